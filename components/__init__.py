"""KFP components: thin ``@dsl.component`` adapters whose bodies call ``trending.*``.

Every component uses ``COMPONENT_IMAGE`` as its base image; ``pipelines.run.compile_pipeline`` replaces it
in the compiled IR with the image the settings name (``TRENDING_COMPONENT_IMAGE``).
"""

from components.image import COMPONENT_IMAGE

__all__ = ["COMPONENT_IMAGE"]
