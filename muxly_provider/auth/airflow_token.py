"""The Airflow UI's own token: a JWT of Airflow's auth manager, checked by that auth manager.

Airflow applies no authentication to plugin apps, so Muxly validates the token itself through
``airflow.api_fastapi.app.get_auth_manager()`` (``AuthManagerDep`` does not work inside a plugin sub-app).
The Airflow user gets the roles of a Muxly user linked to them (``auth_provider = 'airflow'``,
``external_id`` = their Airflow user id) or else ``[muxly] airflow_user_role``.
"""

from __future__ import annotations

from typing import Any

import anyio.from_thread

from muxly_provider.auth.sessions import AuthError

PROVIDER = "airflow"


async def _resolve(token: str) -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return await get_auth_manager().get_user_from_token(token)


def airflow_user(token: str) -> tuple[str, str]:
    """The ``(id, name)`` of the Airflow user of ``token`` (call from a worker thread of the app).

    :raises AuthError: when the token is not valid for Airflow or no auth manager runs in this process
    """
    try:
        user = anyio.from_thread.run(_resolve, token)
    except RuntimeError as exc:  # no auth manager initialised, or not called from a worker thread
        raise AuthError() from exc
    except Exception as exc:  # any rejection of the auth manager (expired, invalid, revoked)
        raise AuthError() from exc
    return str(user.get_id()), str(user.get_name())
