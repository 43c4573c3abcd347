/* A python3 that runs on the shared libpython3.11.so, as an embedding server does.
 * Debian's /usr/bin/python3 links libpython statically (and is measurably faster), so
 * compare.py builds this to show how much of a gap to the floor is the library alone. */
#include <Python.h>

int main(int argc, char** argv) { return Py_BytesMain(argc, argv); }
