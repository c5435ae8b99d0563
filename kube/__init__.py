"""Start-up of the KUBE platform: the `kube` command, the local runner, the scheduler and the
catalogue of services. It imports the services openly; `shared/` never does."""
