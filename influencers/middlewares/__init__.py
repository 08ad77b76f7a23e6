"""middlewares of the influencers project."""
