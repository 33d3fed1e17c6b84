"""The JSON API: one module per concern; ``create`` builds a route per template."""

from .access import SessionController, TokenController
from .catalog import find_customers, health, list_queues, list_templates
from .create import template_router
from .orders import OrderController

__all__ = ["OrderController", "SessionController", "TokenController", "find_customers", "health", "list_queues",
           "list_templates", "template_router"]
