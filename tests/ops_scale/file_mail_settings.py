"""The test settings with e-mails written to files (one folder shared by every process of a test), so a
test can count what web processes and Celery workers sent between them."""

import os

from config.settings_test import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ["PARRAIN_TEST_MAIL_DIR"]
