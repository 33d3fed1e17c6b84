"""Stage 6, runtime: the services that make work orders live.

``Runtime`` (``service``, built on ``creating`` and ``base``) creates, edits, routes
and reads work orders; ``actors`` knows who acts and what they may do; ``state`` loads
orders and saves each change with its audit events; ``views`` counts and lists.
Nothing here imports the web layer.
"""

from .actors import SYSTEM, Actor, add_user, create_token, load_actor, user_for_token
from .service import Runtime
from .state import replay

__all__ = ["SYSTEM", "Actor", "Runtime", "add_user", "create_token", "load_actor", "replay", "user_for_token"]
