// Wiring only: parse the command line, then hand over to the master process.
#include <cstdio>

int main(int argc, char** argv) {
    std::fprintf(stderr, "gantry: not wired yet\n");
    return 1;
}
