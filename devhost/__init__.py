"""The local host: runs function_app.py on one machine (HTTP triggers, timers, Durable Functions)."""
