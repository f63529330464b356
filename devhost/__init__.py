"""`make dev` and the tests' host: function_app.py on one machine. `devhost.host` is a generic
local Functions host with a Durable engine (it would run any Python v2 app); the modules here are
the Dev8 glue: settings and Azurite (`__main__`), the app and its defaults (`dev8`), and parking
environments when the host stops (`environments`)."""
