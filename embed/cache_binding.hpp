#pragma once
// Gives Python the server's shared cache store: the `_gantry_cache` native module behind
// `gantry.cache` (purge, stats) and the Django cache backend `gantry.django.cache.GantryCache`.
// No Python.h here.
namespace gantry {

class RedisTier;
class SharedStore;

// The store Python code reaches (borrowed; it outlives the interpreter's use of it). Set before
// the app is loaded; nullptr (the default) makes the module say "not available". `redis`: the
// shared tier, which purges from Python also reach (and, through it, every other server).
void set_python_cache_store(SharedStore* store, RedisTier* redis = nullptr);

}  // namespace gantry
