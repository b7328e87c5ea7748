"""Domain services: the rules of the product, on top of the repositories."""
