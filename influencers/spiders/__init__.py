"""spiders of the influencers project."""
