// The `_gantry_cache` native module: the shared store's operations for Python, each one call with
// the GIL held (they take microseconds; releasing and retaking the GIL would cost as much), and
// `_gantry_cache.tiered`, the same operations reaching the Redis tier too, whose round trips run
// with the GIL released. Each entry point Python calls makes its GilHeld token, and the helpers
// take it.
#include "embed/runtime/cache_binding.hpp"

#include <chrono>
#include <cstring>
#include <utility>
#include <optional>
#include <string>
#include <vector>

#include "embed/runtime/cache_module.hpp"
#include "embed/runtime/gil.hpp"
#include "embed/runtime/py_util.hpp"
#include "http/key_value_store.hpp"

namespace gantry {

namespace {

KeyValueStore* g_store = nullptr;    // the server's shared store: calls take microseconds
KeyValueStore* g_tiered = nullptr;   // that store with the Redis tier behind it, or null
PurgeBroadcaster* g_purge = nullptr;

// Which store a module function works on. `shared`: the module's own functions, on the server's
// shared store (purges, stats, raw use). `tiers`: the `tiered` object Django's backend uses, the
// shared store and, when the server has one, Redis behind it.
enum class Reach { shared, tiers };

// A store and whether its calls may block on the network: those run with the GIL released, the
// shared store's keep it (releasing and retaking the GIL would cost as much as the call).
struct Target {
    KeyValueStore* store = nullptr;
    bool blocks = false;
};

template <Reach R>
Target target_or_raise(GilHeld&) {
    if (!g_store) {
        PyErr_SetString(PyExc_RuntimeError, "gantry's shared cache is not available in this process");
        return {};
    }
    if (R == Reach::tiers && g_tiered) return {g_tiered, true};
    return {g_store, false};
}

// Runs `call(store)`, with the GIL released when the store may block (a Redis round trip). The
// arguments it reads must stay valid without the GIL: views into immutable str/bytes objects
// the caller holds, or C++ copies.
template <class Call>
auto call_store(GilHeld& gil, const Target& t, Call&& call) {
    if (!t.blocks) return call(*t.store);
    GilReleased released(gil);
    return call(*t.store);
}

bool view_of(GilHeld&, PyObject* obj, std::string_view& out, const char* what) {
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
bool ttl_of(GilHeld&, PyObject* obj, KeyValueStore::Ttl& ttl) {
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

PyObject* item_of(GilHeld&, const KeyValueStore::Value& value) {
    py::Ref bytes(PyBytes_FromStringAndSize(value.bytes.data(), static_cast<Py_ssize_t>(value.bytes.size())));
    if (!bytes) return nullptr;
    return Py_BuildValue("(NI)", bytes.release(), static_cast<unsigned>(value.flags));
}

// The shared store first, with the GIL held: a hit there never waits for the network. A miss
// asks the tiers (Redis, without the GIL) when there are any.
bool get_two_tier(GilHeld& gil, const Target& t, std::string_view key, KeyValueStore::Value& value) {
    if (g_store->get_into(key, value)) return true;
    if (!t.blocks) return false;
    return call_store(gil, t, [&](KeyValueStore& s) { return s.get_into(key, value); });
}

template <Reach R>
PyObject* cache_get(PyObject*, PyObject* key_obj) {
    GilHeld gil = GilHeld::from_python_call();
    Target t = target_or_raise<R>(gil);
    std::string_view key;
    if (!t.store || !view_of(gil, key_obj, key, "key")) return nullptr;
    thread_local KeyValueStore::Value value;  // reused: the hit path allocates only the bytes object
    if (!get_two_tier(gil, t, key, value)) Py_RETURN_NONE;
    return item_of(gil, value);
}

template <Reach R>
PyObject* store_call(GilHeld& gil, PyObject* args, bool only_add) {
    PyObject *key_obj, *value_obj, *ttl_obj;
    unsigned int flags = 0;
    if (!PyArg_ParseTuple(args, "OOIO", &key_obj, &value_obj, &flags, &ttl_obj)) return nullptr;
    Target t = target_or_raise<R>(gil);
    std::string_view key, value;
    KeyValueStore::Ttl ttl;
    if (!t.store || !view_of(gil, key_obj, key, "key") || !view_of(gil, value_obj, value, "value") ||
        !ttl_of(gil, ttl_obj, ttl))
        return nullptr;
    bool ok = call_store(gil, t, [&](KeyValueStore& s) {
        return only_add ? s.add(key, value, flags, ttl) : s.set(key, value, flags, ttl);
    });
    return PyBool_FromLong(ok);
}

template <Reach R>
PyObject* cache_set(PyObject*, PyObject* args) {
    GilHeld gil = GilHeld::from_python_call();
    return store_call<R>(gil, args, false);
}
template <Reach R>
PyObject* cache_add(PyObject*, PyObject* args) {
    GilHeld gil = GilHeld::from_python_call();
    return store_call<R>(gil, args, true);
}

template <Reach R>
PyObject* cache_delete(PyObject*, PyObject* key_obj) {
    GilHeld gil = GilHeld::from_python_call();
    Target t = target_or_raise<R>(gil);
    std::string_view key;
    if (!t.store || !view_of(gil, key_obj, key, "key")) return nullptr;
    return PyBool_FromLong(call_store(gil, t, [&](KeyValueStore& s) { return s.erase(key); }));
}

template <Reach R>
PyObject* cache_contains(PyObject*, PyObject* key_obj) {
    GilHeld gil = GilHeld::from_python_call();
    Target t = target_or_raise<R>(gil);
    std::string_view key;
    if (!t.store || !view_of(gil, key_obj, key, "key")) return nullptr;
    if (g_store->contains(key)) Py_RETURN_TRUE;
    if (!t.blocks) Py_RETURN_FALSE;
    return PyBool_FromLong(call_store(gil, t, [&](KeyValueStore& s) { return s.contains(key); }));
}

template <Reach R>
PyObject* cache_touch(PyObject*, PyObject* args) {
    GilHeld gil = GilHeld::from_python_call();
    PyObject *key_obj, *ttl_obj;
    if (!PyArg_ParseTuple(args, "OO", &key_obj, &ttl_obj)) return nullptr;
    Target t = target_or_raise<R>(gil);
    std::string_view key;
    KeyValueStore::Ttl ttl;
    if (!t.store || !view_of(gil, key_obj, key, "key") || !ttl_of(gil, ttl_obj, ttl)) return nullptr;
    return PyBool_FromLong(call_store(gil, t, [&](KeyValueStore& s) { return s.touch(key, ttl); }));
}

template <Reach R>
PyObject* cache_incr(PyObject*, PyObject* args) {
    GilHeld gil = GilHeld::from_python_call();
    PyObject* key_obj;
    long long delta = 1;
    if (!PyArg_ParseTuple(args, "OL", &key_obj, &delta)) return nullptr;
    Target t = target_or_raise<R>(gil);
    std::string_view key;
    if (!t.store || !view_of(gil, key_obj, key, "key")) return nullptr;
    auto result = call_store(gil, t, [&](KeyValueStore& s) { return s.incr(key, delta); });
    if (!result) Py_RETURN_NONE;
    return PyLong_FromLongLong(*result);
}

// Seconds left (a float), None for never, or -1.0 when absent.
template <Reach R>
PyObject* cache_ttl(PyObject*, PyObject* key_obj) {
    GilHeld gil = GilHeld::from_python_call();
    Target t = target_or_raise<R>(gil);
    std::string_view key;
    if (!t.store || !view_of(gil, key_obj, key, "key")) return nullptr;
    thread_local KeyValueStore::Value value;
    if (!get_two_tier(gil, t, key, value)) return PyFloat_FromDouble(-1.0);
    if (!value.expires) Py_RETURN_NONE;
    auto left = std::chrono::duration<double>(*value.expires - KeyValueStore::Clock::now()).count();
    return PyFloat_FromDouble(left > 0 ? left : 0.0);
}

template <Reach R>
PyObject* cache_erase_prefix(PyObject*, PyObject* prefix_obj) {
    GilHeld gil = GilHeld::from_python_call();
    Target t = target_or_raise<R>(gil);
    std::string_view prefix;
    if (!t.store || !view_of(gil, prefix_obj, prefix, "prefix")) return nullptr;
    return PyLong_FromSize_t(call_store(gil, t, [&](KeyValueStore& s) { return s.erase_prefix(prefix); }));
}

// A list of str or bytes, copied: the list may change while the GIL is released.
bool strings_of(GilHeld& gil, PyObject* list, std::vector<std::string>& out, const char* what) {
    py::Ref seq(PySequence_Fast(list, "expected a list"));
    if (!seq) return false;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.get());
    out.reserve(static_cast<std::size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i) {
        std::string_view text;
        if (!view_of(gil, PySequence_Fast_GET_ITEM(seq.get(), i), text, what)) return false;
        out.emplace_back(text);
    }
    return true;
}

// get_many([key, ...]) -> [(bytes, flags) or None, ...]: one Redis round trip for the misses.
template <Reach R>
PyObject* cache_get_many(PyObject*, PyObject* keys_obj) {
    GilHeld gil = GilHeld::from_python_call();
    Target t = target_or_raise<R>(gil);
    std::vector<std::string> keys;
    if (!t.store || !strings_of(gil, keys_obj, keys, "key")) return nullptr;
    std::vector<std::optional<KeyValueStore::Value>> values;
    call_store(gil, t, [&](KeyValueStore& s) { s.get_many(keys, values); });
    py::Ref list(PyList_New(static_cast<Py_ssize_t>(values.size())));
    if (!list) return nullptr;
    for (std::size_t i = 0; i < values.size(); ++i) {
        PyObject* item = values[i] ? item_of(gil, *values[i]) : Py_NewRef(Py_None);
        if (!item) return nullptr;
        PyList_SET_ITEM(list.get(), static_cast<Py_ssize_t>(i), item);
    }
    return list.release();
}

// set_many([(key, value, flags, ttl), ...]) -> how many were stored.
template <Reach R>
PyObject* cache_set_many(PyObject*, PyObject* entries_obj) {
    GilHeld gil = GilHeld::from_python_call();
    Target t = target_or_raise<R>(gil);
    if (!t.store) return nullptr;
    py::Ref seq(PySequence_Fast(entries_obj, "set_many takes a list of (key, value, flags, ttl)"));
    if (!seq) return nullptr;
    std::vector<KeyValueStore::Item> entries(static_cast<std::size_t>(PySequence_Fast_GET_SIZE(seq.get())));
    for (std::size_t i = 0; i < entries.size(); ++i) {
        PyObject *key_obj, *value_obj, *ttl_obj;
        unsigned int flags = 0;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq.get(), static_cast<Py_ssize_t>(i)), "OOIO", &key_obj,
                              &value_obj, &flags, &ttl_obj))
            return nullptr;
        std::string_view key, value;
        if (!view_of(gil, key_obj, key, "key") || !view_of(gil, value_obj, value, "value") ||
            !ttl_of(gil, ttl_obj, entries[i].ttl))
            return nullptr;
        entries[i].key.assign(key);
        entries[i].value.assign(value);
        entries[i].flags = flags;
    }
    return PyLong_FromSize_t(call_store(gil, t, [&](KeyValueStore& s) { return s.set_many(entries); }));
}

// delete_many([key, ...]) -> how many were present.
template <Reach R>
PyObject* cache_delete_many(PyObject*, PyObject* keys_obj) {
    GilHeld gil = GilHeld::from_python_call();
    Target t = target_or_raise<R>(gil);
    std::vector<std::string> keys;
    if (!t.store || !strings_of(gil, keys_obj, keys, "key")) return nullptr;
    return PyLong_FromSize_t(call_store(gil, t, [&](KeyValueStore& s) { return s.erase_many(keys); }));
}

template <Reach R>
PyObject* cache_stats(PyObject*, PyObject*) {
    GilHeld gil = GilHeld::from_python_call();
    Target t = target_or_raise<R>(gil);
    if (!t.store) return nullptr;
    KeyValueStats s = t.store->stats();
    return Py_BuildValue("{sKsKsKsKsKsKsK}", "entries", (unsigned long long)s.entries, "bytes_used",
                         (unsigned long long)s.bytes_used, "capacity", (unsigned long long)s.capacity, "hits",
                         (unsigned long long)s.hits, "misses", (unsigned long long)s.misses, "evictions",
                         (unsigned long long)s.evictions, "wipes", (unsigned long long)s.wipes);
}

PyObject* tiered_redis(PyObject*, PyObject*) { return PyBool_FromLong(g_tiered != nullptr); }

PyObject* cache_available(PyObject*, PyObject*) { return PyBool_FromLong(g_store != nullptr); }

// Purges beyond this server: each pattern ("=key" for one key, else a key prefix) is removed from
// Redis and published, so every server's subscriber removes it from its own store. Returns how
// many Redis keys went (0 without a Redis tier). Blocking Redis calls, with the GIL released.
PyObject* cache_publish_purge(PyObject*, PyObject* patterns_obj) {
    GilHeld gil = GilHeld::from_python_call();
    std::vector<std::string> patterns;
    py::Ref seq(PySequence_Fast(patterns_obj, "publish_purge takes a list of str"));
    if (!seq) return nullptr;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq.get()); ++i) {
        std::string_view text;
        if (!view_of(gil, PySequence_Fast_GET_ITEM(seq.get(), i), text, "pattern")) return nullptr;
        patterns.emplace_back(text);
    }
    if (!g_purge) return PyLong_FromLong(0);
    std::size_t removed = 0;
    {
        GilReleased released(gil);
        removed = g_purge->purge_everywhere(patterns);
    }
    return PyLong_FromSize_t(removed);
}


// ---- BackendCore: GantryCache.get/set in C ----------------------------------------------------
// Django calls cache.get/cache.set on hot paths; a Python method around one native call costs
// more than the store itself. With Django's default KEY_FUNCTION the backend binds these as its
// get and set: the key is made, checked and encoded here, in one call.

enum ValueKind : std::uint32_t { kPickled = 0, kInt = 1, kBytes = 2, kStr = 3 };  // as gantry/django/cache.py

struct BackendCore {
    PyObject_HEAD
    std::string* prefix;       // namespace + KEY_PREFIX + ":"
    long long version;         // VERSION
    PyObject* default_timeout; // None or a number
    PyObject* sentinel;        // django's DEFAULT_TIMEOUT
    PyObject* validate;        // BaseCache.validate_key (warnings), for keys the fast check doubts
    PyObject* dumps;           // pickle.dumps(value, HIGHEST_PROTOCOL)
    PyObject* loads;           // pickle.loads
    std::size_t namespace_len; // the part of `prefix` Django's own key does not have
};

void core_dealloc(PyObject* self) {
    auto* c = reinterpret_cast<BackendCore*>(self);
    delete c->prefix;
    Py_XDECREF(c->default_timeout);
    Py_XDECREF(c->sentinel);
    Py_XDECREF(c->validate);
    Py_XDECREF(c->dumps);
    Py_XDECREF(c->loads);
    PyTypeObject* type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
}

int core_init(PyObject* self, PyObject* args, PyObject*) {
    auto* c = reinterpret_cast<BackendCore*>(self);
    const char *ns, *key_prefix;
    Py_ssize_t ns_len, kp_len;
    long long version;
    PyObject *timeout, *sentinel, *validate, *dumps, *loads;
    if (!PyArg_ParseTuple(args, "s#s#LOOOOO:BackendCore", &ns, &ns_len, &key_prefix, &kp_len, &version, &timeout,
                          &sentinel, &validate, &dumps, &loads))
        return -1;
    delete c->prefix;
    c->prefix = new std::string(ns, static_cast<std::size_t>(ns_len));
    c->namespace_len = c->prefix->size();
    c->prefix->append(key_prefix, static_cast<std::size_t>(kp_len));
    c->prefix->push_back(':');
    c->version = version;
    for (auto [slot, value] : {std::pair{&c->default_timeout, timeout}, {&c->sentinel, sentinel}, {&c->validate, validate},
                               {&c->dumps, dumps}, {&c->loads, loads}}) {
        Py_INCREF(value);
        Py_XSETREF(*slot, value);
    }
    return 0;
}

// The store key for (key, version) into `out`; false with a Python error set.
bool make_key(GilHeld& gil, BackendCore* c, PyObject* key, PyObject* version, std::string& out) {
    out.assign(*c->prefix);
    if (version == nullptr || version == Py_None) {
        out += std::to_string(c->version);
    } else {
        py::Ref text(PyObject_Str(version));
        std::string_view v;
        if (!text || !view_of(gil, text.get(), v, "version")) return false;
        out += v;
    }
    out.push_back(':');
    py::Ref owned;
    if (!PyUnicode_Check(key)) {
        owned.reset(PyObject_Str(key));
        if (!owned) return false;
        key = owned.get();
    }
    Py_ssize_t n = 0;
    const char* k = PyUnicode_AsUTF8AndSize(key, &n);
    if (!k) return false;
    out.append(k, static_cast<std::size_t>(n));
    // Django warns (CacheKeyWarning) about keys memcached would refuse; the common key passes this
    // check, the rest go through BaseCache.validate_key for the exact warning.
    bool doubtful = out.size() - c->namespace_len > 250;
    for (std::size_t i = c->namespace_len; i < out.size() && !doubtful; ++i) {
        unsigned char ch = static_cast<unsigned char>(out[i]);
        doubtful = ch < 33 || ch == 127;
    }
    if (doubtful) {
        py::Ref made(PyUnicode_DecodeUTF8(out.data() + c->namespace_len,
                                          static_cast<Py_ssize_t>(out.size() - c->namespace_len), "surrogatepass"));
        if (!made) return false;
        py::Ref r(PyObject_CallOneArg(c->validate, made.get()));
        if (!r) return false;
    }
    return true;
}

PyObject* core_get(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    GilHeld gil = GilHeld::from_python_call();
    auto* c = reinterpret_cast<BackendCore*>(self);
    static const char* names[] = {"key", "default", "version"};
    PyObject* slots[3] = {nullptr, Py_None, nullptr};
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs < 1 || nargs > 3) return PyErr_Format(PyExc_TypeError, "get() takes from 1 to 3 arguments");
    for (Py_ssize_t i = 0; i < nargs; ++i) slots[i] = args[i];
    for (Py_ssize_t i = 0; i < nkw; ++i) {
        const char* name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i));
        int at = -1;
        for (int j = 1; j < 3; ++j)
            if (name && std::strcmp(name, names[j]) == 0) at = j;
        if (at < 0) return PyErr_Format(PyExc_TypeError, "get() got an unexpected keyword argument '%s'", name);
        slots[at] = args[nargs + i];
    }
    Target t = target_or_raise<Reach::tiers>(gil);
    if (!t.store) return nullptr;
    thread_local std::string key;
    if (!make_key(gil, c, slots[0], slots[2], key)) return nullptr;
    thread_local KeyValueStore::Value value;
    if (!get_two_tier(gil, t, key, value)) return Py_NewRef(slots[1]);
    const auto& b = value.bytes;
    switch (value.flags) {
    case kStr: return PyUnicode_DecodeUTF8(b.data(), static_cast<Py_ssize_t>(b.size()), "strict");
    case kBytes: return PyBytes_FromStringAndSize(b.data(), static_cast<Py_ssize_t>(b.size()));
    case kInt: {
        std::string text(b);
        return PyLong_FromString(text.c_str(), nullptr, 10);
    }
    default: {
        py::Ref raw(PyBytes_FromStringAndSize(b.data(), static_cast<Py_ssize_t>(b.size())));
        if (!raw) return nullptr;
        return PyObject_CallOneArg(c->loads, raw.get());
    }
    }
}

PyObject* core_set(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    GilHeld gil = GilHeld::from_python_call();
    auto* c = reinterpret_cast<BackendCore*>(self);
    static const char* names[] = {"key", "value", "timeout", "version"};
    PyObject* slots[4] = {nullptr, nullptr, c->sentinel, nullptr};
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 4) return PyErr_Format(PyExc_TypeError, "set() takes from 2 to 4 arguments");
    for (Py_ssize_t i = 0; i < nargs; ++i) slots[i] = args[i];
    for (Py_ssize_t i = 0; i < nkw; ++i) {
        const char* name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i));
        int at = -1;
        for (int j = 0; j < 4; ++j)
            if (name && std::strcmp(name, names[j]) == 0) at = j;
        if (at < 0) return PyErr_Format(PyExc_TypeError, "set() got an unexpected keyword argument '%s'", name);
        slots[at] = args[nargs + i];
    }
    if (!slots[0] || !slots[1]) return PyErr_Format(PyExc_TypeError, "set() needs a key and a value");
    Target t = target_or_raise<Reach::tiers>(gil);
    if (!t.store) return nullptr;
    thread_local std::string key;
    if (!make_key(gil, c, slots[0], slots[3], key)) return nullptr;

    PyObject* timeout = slots[2] == c->sentinel ? c->default_timeout : slots[2];
    KeyValueStore::Ttl ttl;
    if (!ttl_of(gil, timeout, ttl)) return nullptr;
    if (ttl && ttl->count() <= 0) {  // Django: a timeout of 0 or less means "expire now"
        call_store(gil, t, [&](KeyValueStore& s) { return s.erase(key); });
        Py_RETURN_NONE;
    }
    PyObject* v = slots[1];
    std::string_view bytes;
    std::uint32_t kind;
    py::Ref owned;
    if (PyUnicode_CheckExact(v)) {
        Py_ssize_t n = 0;
        const char* text = PyUnicode_AsUTF8AndSize(v, &n);
        if (!text) {
            PyErr_Clear();  // lone surrogates: not UTF-8, but pickle keeps them
        } else {
            bytes = std::string_view(text, static_cast<std::size_t>(n));
            kind = kStr;
        }
    }
    if (bytes.data() == nullptr) {
        if (PyBytes_CheckExact(v)) {
            bytes = std::string_view(PyBytes_AS_STRING(v), static_cast<std::size_t>(PyBytes_GET_SIZE(v)));
            kind = kBytes;
        } else if (PyLong_CheckExact(v)) {
            owned.reset(PyObject_Str(v));
            if (!owned || !view_of(gil, owned.get(), bytes, "value")) return nullptr;
            kind = kInt;
        } else {
            owned.reset(PyObject_CallOneArg(c->dumps, v));
            if (!owned) return nullptr;
            if (!PyBytes_Check(owned.get())) return PyErr_Format(PyExc_TypeError, "pickle.dumps did not give bytes");
            bytes = std::string_view(PyBytes_AS_STRING(owned.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(owned.get())));
            kind = kPickled;
        }
    }
    // Too large for the store: the key is simply absent. `bytes` views `v` or `owned`, both
    // held here, so it stays valid while a Redis round trip runs without the GIL.
    call_store(gil, t, [&](KeyValueStore& s) { return s.set(key, bytes, kind, ttl); });
    Py_RETURN_NONE;
}

PyMethodDef core_methods[] = {
    {"get", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(core_get)), METH_FASTCALL | METH_KEYWORDS,
     "get(key, default=None, version=None)"},
    {"set", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(core_set)), METH_FASTCALL | METH_KEYWORDS,
     "set(key, value, timeout=DEFAULT_TIMEOUT, version=None)"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot core_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(core_dealloc)},
    {Py_tp_init, reinterpret_cast<void*>(core_init)},
    {Py_tp_new, reinterpret_cast<void*>(PyType_GenericNew)},
    {Py_tp_methods, core_methods},
    {Py_tp_doc, const_cast<char*>("GantryCache's get and set for Django's default key function")},
    {0, nullptr},
};

PyType_Spec core_spec = {"_gantry_cache.BackendCore", sizeof(BackendCore), 0, Py_TPFLAGS_DEFAULT, core_slots};

// The module's own functions: the server's shared store (purges, stats, raw use).
PyMethodDef methods[] = {
    {"available", cache_available, METH_NOARGS, "available(): whether this process has the server's store"},
    {"get", cache_get<Reach::shared>, METH_O, "get(key) -> (bytes, flags) or None"},
    {"set", cache_set<Reach::shared>, METH_VARARGS, "set(key, value, flags, ttl_seconds_or_None) -> stored"},
    {"add", cache_add<Reach::shared>, METH_VARARGS, "add(key, value, flags, ttl_seconds_or_None) -> stored (only if absent)"},
    {"delete", cache_delete<Reach::shared>, METH_O, "delete(key) -> existed"},
    {"contains", cache_contains<Reach::shared>, METH_O, "contains(key) -> bool"},
    {"touch", cache_touch<Reach::shared>, METH_VARARGS, "touch(key, ttl_seconds_or_None) -> existed"},
    {"incr", cache_incr<Reach::shared>, METH_VARARGS, "incr(key, delta) -> new int, or None if absent or not an integer"},
    {"ttl", cache_ttl<Reach::shared>, METH_O, "ttl(key) -> seconds left, None for never, -1.0 if absent"},
    {"erase_prefix", cache_erase_prefix<Reach::shared>, METH_O, "erase_prefix(prefix) -> number removed"},
    {"get_many", cache_get_many<Reach::shared>, METH_O, "get_many([key, ...]) -> [(bytes, flags) or None, ...]"},
    {"set_many", cache_set_many<Reach::shared>, METH_O, "set_many([(key, value, flags, ttl), ...]) -> number stored"},
    {"delete_many", cache_delete_many<Reach::shared>, METH_O, "delete_many([key, ...]) -> number present"},
    {"stats", cache_stats<Reach::shared>, METH_NOARGS, "stats() -> dict"},
    {"publish_purge", cache_publish_purge, METH_O, "publish_purge([\"=key\" or prefix, ...]) -> Redis keys removed"},
    {nullptr, nullptr, 0, nullptr},
};

// `_gantry_cache.tiered`: the same operations on the shared store with, when the server has a
// Redis tier, Redis behind it (what Django's GantryCache uses). Without a tier, the shared store.
PyMethodDef tiered_methods[] = {
    {"redis", tiered_redis, METH_NOARGS, "redis(): whether a Redis tier is behind the shared store"},
    {"get", cache_get<Reach::tiers>, METH_O, "get(key) -> (bytes, flags) or None"},
    {"set", cache_set<Reach::tiers>, METH_VARARGS, "set(key, value, flags, ttl_seconds_or_None) -> stored"},
    {"add", cache_add<Reach::tiers>, METH_VARARGS, "add(key, value, flags, ttl_seconds_or_None) -> stored (only if absent)"},
    {"delete", cache_delete<Reach::tiers>, METH_O, "delete(key) -> existed"},
    {"contains", cache_contains<Reach::tiers>, METH_O, "contains(key) -> bool"},
    {"touch", cache_touch<Reach::tiers>, METH_VARARGS, "touch(key, ttl_seconds_or_None) -> existed"},
    {"incr", cache_incr<Reach::tiers>, METH_VARARGS, "incr(key, delta) -> new int, or None if absent or not an integer"},
    {"ttl", cache_ttl<Reach::tiers>, METH_O, "ttl(key) -> seconds left, None for never, -1.0 if absent"},
    {"erase_prefix", cache_erase_prefix<Reach::tiers>, METH_O, "erase_prefix(prefix) -> number removed"},
    {"get_many", cache_get_many<Reach::tiers>, METH_O, "get_many([key, ...]) -> [(bytes, flags) or None, ...]"},
    {"set_many", cache_set_many<Reach::tiers>, METH_O, "set_many([(key, value, flags, ttl), ...]) -> number stored"},
    {"delete_many", cache_delete_many<Reach::tiers>, METH_O, "delete_many([key, ...]) -> number present"},
    {"stats", cache_stats<Reach::tiers>, METH_NOARGS, "stats() -> dict (the shared store's)"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gantry_cache", "the server's shared cache store", -1,
                      methods, nullptr, nullptr, nullptr, nullptr};
PyModuleDef tiered_module = {PyModuleDef_HEAD_INIT, "_gantry_cache.tiered",
                             "the shared store with the server's Redis tier behind it", -1,
                             tiered_methods, nullptr, nullptr, nullptr, nullptr};

PyObject* init_module() {
    py::Ref m(PyModule_Create(&module));
    if (!m) return nullptr;
    PyObject* tiered = PyModule_Create(&tiered_module);
    if (!tiered || PyModule_AddObject(m.get(), "tiered", tiered) < 0) {
        Py_XDECREF(tiered);
        return nullptr;
    }
    PyObject* core = PyType_FromSpec(&core_spec);
    if (!core || PyModule_AddObject(m.get(), "BackendCore", core) < 0) {
        Py_XDECREF(core);
        return nullptr;
    }
    return m.release();
}

}  // namespace

void set_python_cache_store(KeyValueStore* store, PurgeBroadcaster* purge, KeyValueStore* tiered) {
    g_store = store;
    g_purge = purge;
    g_tiered = store ? tiered : nullptr;
}

bool register_cache_module() { return PyImport_AppendInittab("_gantry_cache", &init_module) == 0; }

}  // namespace gantry
