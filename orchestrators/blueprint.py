"""The Durable Functions blueprint the orchestrators and activities register on."""

import azure.durable_functions as df

bp = df.Blueprint()
