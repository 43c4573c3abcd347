// The `_gantry_cache` native module: the shared store's operations for Python, each one call with
// the GIL held (they take microseconds; releasing and retaking the GIL would cost as much).
#include "embed/cache_binding.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cache/redis_tier.hpp"
#include "cache/shared_store.hpp"
#include "embed/cache_module.hpp"
#include "embed/py_util.hpp"

namespace gantry {

namespace {

SharedStore* g_store = nullptr;
RedisTier* g_redis = nullptr;

SharedStore* store_or_raise() {
    if (!g_store) PyErr_SetString(PyExc_RuntimeError, "gantry's shared cache is not available in this process");
    return g_store;
}

bool view_of(PyObject* obj, std::string_view& out, const char* what) {
    if (PyBytes_Check(obj)) {
        out = std::string_view(PyBytes_AS_STRING(obj), static_cast<std::size_t>(PyBytes_GET_SIZE(obj)));
        return true;
    }
    if (PyUnicode_Check(obj)) {
        Py_ssize_t n = 0;
        const char* s = PyUnicode_AsUTF8AndSize(obj, &n);
        if (!s) return false;
        out = std::string_view(s, static_cast<std::size_t>(n));
        return true;
    }
    PyErr_Format(PyExc_TypeError, "%s must be str or bytes, not %.100s", what, Py_TYPE(obj)->tp_name);
    return false;
}

// None: never expires; a number: seconds (0 or less: expired at once).
bool ttl_of(PyObject* obj, SharedStore::Ttl& ttl) {
    if (obj == Py_None) {
        ttl.reset();
        return true;
    }
    double seconds = PyFloat_AsDouble(obj);
    if (seconds == -1.0 && PyErr_Occurred()) return false;
    if (seconds > 1e12) seconds = 1e12;
    ttl = std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
    return true;
}

PyObject* cache_get(PyObject*, PyObject* key_obj) {
    SharedStore* store = store_or_raise();
    std::string_view key;
    if (!store || !view_of(key_obj, key, "key")) return nullptr;
    thread_local SharedStore::Value value;  // reused: the hit path allocates only the bytes object
    if (!store->get_into(key, value)) Py_RETURN_NONE;
    py::Ref bytes(PyBytes_FromStringAndSize(value.bytes.data(), static_cast<Py_ssize_t>(value.bytes.size())));
    if (!bytes) return nullptr;
    return Py_BuildValue("(NI)", bytes.release(), static_cast<unsigned>(value.flags));
}

PyObject* store_call(PyObject* args, bool only_add) {
    PyObject *key_obj, *value_obj, *ttl_obj;
    unsigned int flags = 0;
    if (!PyArg_ParseTuple(args, "OOIO", &key_obj, &value_obj, &flags, &ttl_obj)) return nullptr;
    SharedStore* store = store_or_raise();
    std::string_view key, value;
    SharedStore::Ttl ttl;
    if (!store || !view_of(key_obj, key, "key") || !view_of(value_obj, value, "value") || !ttl_of(ttl_obj, ttl))
        return nullptr;
    bool ok = only_add ? store->add(key, value, flags, ttl) : store->set(key, value, flags, ttl);
    return PyBool_FromLong(ok);
}

PyObject* cache_set(PyObject*, PyObject* args) { return store_call(args, false); }
PyObject* cache_add(PyObject*, PyObject* args) { return store_call(args, true); }

PyObject* cache_delete(PyObject*, PyObject* key_obj) {
    SharedStore* store = store_or_raise();
    std::string_view key;
    if (!store || !view_of(key_obj, key, "key")) return nullptr;
    return PyBool_FromLong(store->erase(key));
}

PyObject* cache_contains(PyObject*, PyObject* key_obj) {
    SharedStore* store = store_or_raise();
    std::string_view key;
    if (!store || !view_of(key_obj, key, "key")) return nullptr;
    return PyBool_FromLong(store->contains(key));
}

PyObject* cache_touch(PyObject*, PyObject* args) {
    PyObject *key_obj, *ttl_obj;
    if (!PyArg_ParseTuple(args, "OO", &key_obj, &ttl_obj)) return nullptr;
    SharedStore* store = store_or_raise();
    std::string_view key;
    SharedStore::Ttl ttl;
    if (!store || !view_of(key_obj, key, "key") || !ttl_of(ttl_obj, ttl)) return nullptr;
    return PyBool_FromLong(store->touch(key, ttl));
}

PyObject* cache_incr(PyObject*, PyObject* args) {
    PyObject* key_obj;
    long long delta = 1;
    if (!PyArg_ParseTuple(args, "OL", &key_obj, &delta)) return nullptr;
    SharedStore* store = store_or_raise();
    std::string_view key;
    if (!store || !view_of(key_obj, key, "key")) return nullptr;
    auto result = store->incr(key, delta);
    if (!result) Py_RETURN_NONE;
    return PyLong_FromLongLong(*result);
}

// Seconds left (a float), None for never, or -1.0 when absent.
PyObject* cache_ttl(PyObject*, PyObject* key_obj) {
    SharedStore* store = store_or_raise();
    std::string_view key;
    if (!store || !view_of(key_obj, key, "key")) return nullptr;
    thread_local SharedStore::Value value;
    if (!store->get_into(key, value)) return PyFloat_FromDouble(-1.0);
    if (!value.expires) Py_RETURN_NONE;
    auto left = std::chrono::duration<double>(*value.expires - SharedStore::Clock::now()).count();
    return PyFloat_FromDouble(left > 0 ? left : 0.0);
}

PyObject* cache_erase_prefix(PyObject*, PyObject* prefix_obj) {
    SharedStore* store = store_or_raise();
    std::string_view prefix;
    if (!store || !view_of(prefix_obj, prefix, "prefix")) return nullptr;
    return PyLong_FromSize_t(store->erase_prefix(prefix));
}

PyObject* cache_stats(PyObject*, PyObject*) {
    SharedStore* store = store_or_raise();
    if (!store) return nullptr;
    SharedStoreStats s = store->stats();
    return Py_BuildValue("{sKsKsKsKsKsKsK}", "entries", (unsigned long long)s.entries, "bytes_used",
                         (unsigned long long)s.bytes_used, "capacity", (unsigned long long)s.capacity, "hits",
                         (unsigned long long)s.hits, "misses", (unsigned long long)s.misses, "evictions",
                         (unsigned long long)s.evictions, "wipes", (unsigned long long)s.wipes);
}

PyObject* cache_available(PyObject*, PyObject*) { return PyBool_FromLong(g_store != nullptr); }

// Purges beyond this server: each pattern ("=key" for one key, else a key prefix) is removed from
// Redis and published, so every server's subscriber removes it from its own store. Returns how
// many Redis keys went (0 without a Redis tier). Blocking Redis calls, with the GIL released.
PyObject* cache_publish_purge(PyObject*, PyObject* patterns_obj) {
    std::vector<std::string> patterns;
    py::Ref seq(PySequence_Fast(patterns_obj, "publish_purge takes a list of str"));
    if (!seq) return nullptr;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq.get()); ++i) {
        std::string_view text;
        if (!view_of(PySequence_Fast_GET_ITEM(seq.get(), i), text, "pattern")) return nullptr;
        patterns.emplace_back(text);
    }
    if (!g_redis) return PyLong_FromLong(0);
    std::size_t removed = 0;
    Py_BEGIN_ALLOW_THREADS
    RedisStore& redis = g_redis->store();
    for (const auto& p : patterns) {
        if (!p.empty() && p[0] == '=') removed += redis.erase(std::string_view(p).substr(1)) ? 1 : 0;
        else removed += redis.erase_prefix(p).value_or(0);
        redis.publish(RedisTier::kPurgeChannel, p);
    }
    Py_END_ALLOW_THREADS
    return PyLong_FromSize_t(removed);
}

PyMethodDef methods[] = {
    {"available", cache_available, METH_NOARGS, "available(): whether this process has the server's store"},
    {"get", cache_get, METH_O, "get(key) -> (bytes, flags) or None"},
    {"set", cache_set, METH_VARARGS, "set(key, value, flags, ttl_seconds_or_None) -> stored"},
    {"add", cache_add, METH_VARARGS, "add(key, value, flags, ttl_seconds_or_None) -> stored (only if absent)"},
    {"delete", cache_delete, METH_O, "delete(key) -> existed"},
    {"contains", cache_contains, METH_O, "contains(key) -> bool"},
    {"touch", cache_touch, METH_VARARGS, "touch(key, ttl_seconds_or_None) -> existed"},
    {"incr", cache_incr, METH_VARARGS, "incr(key, delta) -> new int, or None if absent or not an integer"},
    {"ttl", cache_ttl, METH_O, "ttl(key) -> seconds left, None for never, -1.0 if absent"},
    {"erase_prefix", cache_erase_prefix, METH_O, "erase_prefix(prefix) -> number removed"},
    {"stats", cache_stats, METH_NOARGS, "stats() -> dict"},
    {"publish_purge", cache_publish_purge, METH_O, "publish_purge([\"=key\" or prefix, ...]) -> Redis keys removed"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gantry_cache", "the server's shared cache store", -1,
                      methods, nullptr, nullptr, nullptr, nullptr};

PyObject* init_module() { return PyModule_Create(&module); }

}  // namespace

void set_python_cache_store(SharedStore* store, RedisTier* redis) {
    g_store = store;
    g_redis = redis;
}

bool register_cache_module() { return PyImport_AppendInittab("_gantry_cache", &init_module) == 0; }

}  // namespace gantry
