"""``python -m tests.support.enrol_two_factor EMAIL`` in a stack's environment: set up two-factor
for that user of the stack's database, as the set-up page would, and print ``secret step``
(the secret and the time step the set-up spent) for the test process to compute codes from."""

from __future__ import annotations

import sys


def main(email: str) -> None:
    from sqlalchemy import select

    from config import config_from_env
    from portal import create_app
    from portal.accounts.models import User
    from portal.extensions import db
    from tests.support import twofactor

    app = create_app(config_from_env(), role="worker")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise SystemExit(f"no user {email}")
        secret, _ = twofactor.enrol(user)
        step = twofactor.secret_row_step(user)
        db.session.commit()
        print(secret, step)


if __name__ == "__main__":
    main(sys.argv[1])
