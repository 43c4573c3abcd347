# gantry: the two commands of the README are `make demo` and `make test`; each does all set-up.
JOBS ?= 2
PORT ?= 8000
RELEASE := build/release
ASAN := build/asan

.PHONY: deps build build-asan demo test test-release test-asan bench fuzz clean

deps:
	scripts/install-deps.sh

build: deps
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release -DGANTRY_TESTS=ON -DGANTRY_BENCH=ON
	cmake --build $(RELEASE) -j$(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DGANTRY_SANITIZE=ON -DGANTRY_TESTS=ON
	cmake --build $(ASAN) -j$(JOBS)

# Builds, prepares the Django demo (migrate, seed, collectstatic) and serves it on 127.0.0.1:$(PORT).
demo: build
	examples/django_demo/setup.sh
	DJANGO_DEBUG=1 $(RELEASE)/gantry --chdir examples/django_demo -b 127.0.0.1:$(PORT) -w 2 \
	    --access-logfile - demo.wsgi:application

# Every test: unit tests and end-to-end tests, on the release build and under ASan+UBSan.
test: build build-asan
	examples/django_demo/setup.sh
	cd $(RELEASE) && ctest --output-on-failure
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure

# The libFuzzer targets (clang, ASan+UBSan; see docs/operations.md), 30 s each
# from their seed corpora: fails on any crash. CI runs it after `make test`.
fuzz: deps
	fuzz/run.sh 30

bench: build
	examples/django_demo/setup.sh
	$(RELEASE)/bench/pipeline_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
	/usr/bin/python3 bench/e2e/compare.py --markdown

clean:
	rm -rf build
