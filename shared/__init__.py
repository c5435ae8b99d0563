"""The KUBE platform's common package: config, db, celery, events, auth, errors, http."""
