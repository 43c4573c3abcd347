#pragma once
// Gives Python the server's shared cache store: the `_gantry_cache` native module behind
// `gantry.cache` (purge, stats) and the Django cache backend `gantry.django.cache.GantryCache`.
// No Python.h here.
#include "http/key_value_store.hpp"

namespace gantry {

// The store Python code reaches (borrowed; it outlives the interpreter's use of it). Set before
// the app is loaded; nullptr (the default) makes the module say "not available". `purge`: the
// shared tier, which purges from Python also reach (and, through it, every other server).
// `tiered`: `store` with the Redis tier behind it, for Django's cache backend; its calls block on
// the network, so they run with the GIL released. Null: the backend uses `store` alone.
void set_python_cache_store(KeyValueStore* store, PurgeBroadcaster* purge = nullptr, KeyValueStore* tiered = nullptr);

}  // namespace gantry
