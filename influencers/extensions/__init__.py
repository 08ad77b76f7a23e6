"""extensions of the influencers project."""
