"""pipelines of the influencers project."""
