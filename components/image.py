"""The placeholder base image of every component, swapped for the real tag at compile time."""

COMPONENT_IMAGE = "trending-components:dev"
