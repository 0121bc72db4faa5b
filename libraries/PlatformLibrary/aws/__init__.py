"""AWS engines (session and clients, safety guard, FIS, CloudWatch, cost) and their keywords."""
