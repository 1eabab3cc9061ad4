"""What the JSON API (api/routes/) and the console (api/ui/) both do, as plain async
functions of the runtime and the request models or IDs: validation, the store's calls, the
models built and Relay's errors raised. A route and the form that does the same thing call
the same function, so they agree; neither package imports the other (`lint-imports`)."""
