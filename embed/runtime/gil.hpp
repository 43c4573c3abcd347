#pragma once
// Internal to embed/: the GIL as a type. Code that touches Python objects takes a `GilHeld&` (or
// lives in a type built from one); a GilHeld exists only where the GIL really is held:
//
//   GilEnsured gil;                  any thread, PyGILState_Ensure .. PyGILState_Release
//   GilRestored gil(python_thread);  an executor thread's own state, restored for a run of calls
//   InterpreterStartGil              the thread that started the interpreter (it holds the GIL)
//   GilHeld::from_python_call()      the entry of a C function Python calls
//
// and `GilReleased released(gil);` gives it up for a blocking call, re-taking it at scope end
// (an exception included). This is the only file that calls the CPython API's GIL functions.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cassert>

namespace gantry {

// Proof that this thread holds the GIL. Neither copied nor moved: pass it by reference, down the
// calls made inside the scope that holds it.
class GilHeld {
public:
    GilHeld(const GilHeld&) = delete;
    GilHeld& operator=(const GilHeld&) = delete;

    // For the entry of a C function Python calls (a module function, a type's tp_call): the
    // interpreter calls it with the GIL held. The one place where the token is asserted rather
    // than acquired; use it only there, as `GilHeld gil = GilHeld::from_python_call();`.
    static GilHeld from_python_call() noexcept {
        assert(PyGILState_Check());
        return GilHeld();
    }

protected:
    GilHeld() = default;
};

// The GIL taken by any thread (a thread state is made for a thread that has none).
class GilEnsured final : public GilHeld {
public:
    GilEnsured() noexcept : state_(PyGILState_Ensure()) {}
    ~GilEnsured() { PyGILState_Release(state_); }

private:
    PyGILState_STATE state_;
};

// The thread that ran Py_InitializeFromConfig holds the GIL from then on; this stands for that
// hold. Only the Interpreter makes one, right after the interpreter started.
class InterpreterStartGil final : public GilHeld {
private:
    friend class Interpreter;
    InterpreterStartGil() noexcept { assert(PyGILState_Check()); }
};

// The GIL given up by this thread for the scope (a blocking call, or the starting thread while
// the executor threads run), and taken back at its end.
class GilReleased {
public:
    explicit GilReleased(GilHeld&) noexcept : saved_(PyEval_SaveThread()) {}
    ~GilReleased() { PyEval_RestoreThread(saved_); }
    GilReleased(const GilReleased&) = delete;
    GilReleased& operator=(const GilReleased&) = delete;

private:
    PyThreadState* saved_;
};

// A Python thread of our own (an executor thread): its thread state lives as long as this
// object, while the GIL is held only inside a GilRestored.
class PythonThread {
public:
    PythonThread() noexcept : ensured_(PyGILState_Ensure()), state_(PyEval_SaveThread()) {}
    ~PythonThread() {
        PyEval_RestoreThread(state_);
        PyGILState_Release(ensured_);
    }
    PythonThread(const PythonThread&) = delete;
    PythonThread& operator=(const PythonThread&) = delete;

    // For the --timeout stack dump, read from another thread (stack_dump.hpp).
    PyThreadState* state() const noexcept { return state_; }

private:
    PyGILState_STATE ensured_;
    PyThreadState* state_;
};

// The GIL, for a run of calls on a PythonThread: one acquisition serves every call taken while
// it is held.
class GilRestored final : public GilHeld {
public:
    explicit GilRestored(PythonThread& thread) noexcept { PyEval_RestoreThread(thread.state()); }
    ~GilRestored() { PyEval_SaveThread(); }
};

}  // namespace gantry
