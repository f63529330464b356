"""The use cases: environments (create, commands, settle, restore), the sweeps and the reconciler,
and the ports they drive. Imports the domain and the cross-cutting modules at the top of shared/,
never an adapter."""
