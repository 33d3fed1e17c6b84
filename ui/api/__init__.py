"""The JSON API: one module per concern; ``create`` builds a route per template."""

from .access import SessionController, TokenController
from .catalog import health, list_queues, list_templates
from .create import create_order_of_new_template, template_router
from .orders import OrderController

__all__ = ["OrderController", "SessionController", "TokenController", "create_order_of_new_template",
           "health", "list_queues", "list_templates", "template_router"]
