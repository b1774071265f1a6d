"""The home page: where each project stands and what waits for the signed-in user."""
