"""The API's routes, one router per resource; `serving.app.create_app` includes them.

| module | routes | scope |
|---|---|---|
| `ingest.py` | `POST /v1/events`, `POST /v1/tracks` | write, admin |
| `recommend.py` | recommendations, rank, similar (`read`); seed (`write`) | read, write |
| `profile.py` | `GET /v1/users/{user_id}/profile` | read |
| `search.py` | `GET /v1/search` | read |
| `experiments.py` | `GET /v1/experiments` | admin |
| `listen.py` | `/listen` (none); `GET /v1/catalog/summary`, `GET /v1/listeners` | read |
| `users.py` | `DELETE /v1/users/{user_id}`, `GET /v1/users/{user_id}/export` | admin |
| `serving/ops.py` | lag, summary, metrics (`admin`); `/readyz`, `/healthz`, `/ops` | admin, none |

A listener token (JWT, `sub` = user id) may use the per-user routes for its own listener, post its
own events and read similar tracks (`serving.auth.ListenerAccess`), never the rest.
Each router declares its key scope and its error responses once; `serving.deps` holds the typed
dependencies and the request parameters.
"""
