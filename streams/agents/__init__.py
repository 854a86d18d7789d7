"""The worker's agents, timers, tasks and web pages, one module per input or stage; each has a
``register(rt, ...)`` that puts it on the runtime's app. ``streams.worker.create_worker`` calls
them all, in one place."""
