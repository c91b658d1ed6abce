# SPDX-License-Identifier: MIT
"""A one-machine JupyterHub for a workshop: `pvlab hub` (see docs/workshop.md).

- `settings`: the organiser's choices (`HubSettings`), stored as hub.json in the state folder;
- `auth`: `WorkshopAuthenticator`, a workshop password to claim a name, then a personal one;
- `spawner`: `CourseSpawner`, one home per learner with the course copied in, limits;
- `config`: `configure(c, state_dir)`, the JupyterHub configuration built from the settings;
- `launcher`: start/stop the real JupyterHub process (used by `pvlab hub`, tests, benchmarks).

This package imports JupyterHub only where it must (`auth`, `spawner`, `config`), so
`pvlab hub --help` works without the `hub` extra installed.
"""
