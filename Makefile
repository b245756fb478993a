# The two set-up commands of the README. Both create .venv in the repository.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT := demo-output

.PHONY: demo test venv clean cpp-deps cpp-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

# Core install only (no PyTorch), then the live pipeline on the shipped public-domain photo.
demo: venv
	$(BIN)/python -m pip install -q -e .
	$(BIN)/fer-edge run --source src/fer_edge/assets/astronaut.jpg --output $(DEMO_OUT)/astronaut.jpg --json $(DEMO_OUT)/astronaut.jsonl

# Everything (dev extras), then the whole suite.
test: venv cpp-test
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache

# --- libfer_edge (cpp/, docs/cpp.md): build, ctest, and the same tests under ASan + UBSan ---------------
CPP_APT := g++ libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev nlohmann-json3-dev
CPP_CMAKE = $(BIN)/cmake -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(BIN)/ninja) \
	-DOpenVINO_DIR=$$($(BIN)/python -c "import openvino.utils as u; print(u.get_cmake_path())")

# Build tools from PyPI into the venv; system packages only when missing (apt-get, as root or via sudo).
cpp-deps: venv
	$(BIN)/python -m pip install -q cmake ninja "openvino>=2024.4"
	@missing=$$(for p in $(CPP_APT); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

cpp-test: cpp-deps
	$(CPP_CMAKE) -S cpp -B cpp/build -DCMAKE_BUILD_TYPE=Release
	$(BIN)/cmake --build cpp/build -j2
	$(BIN)/ctest --test-dir cpp/build --output-on-failure
	$(CPP_CMAKE) -S cpp -B cpp/build-asan -DCMAKE_BUILD_TYPE=Debug -DFE_SANITIZE=ON -DFE_BUILD_EXAMPLES=OFF
	$(BIN)/cmake --build cpp/build-asan -j2 --target test_c_api test_cpp
	$(BIN)/ctest --test-dir cpp/build-asan --output-on-failure -R "c_api|cpp_wrapper"
