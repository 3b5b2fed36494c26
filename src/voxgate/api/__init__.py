"""HTTP and WebSocket adapters. ``voxgate.api.app.create_app(settings)`` builds the application."""
