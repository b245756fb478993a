// Opens a model through the installed package and prints what it found.
#include <cstdio>

#include <fer_edge/fer_edge.hpp>

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    try {
        fe::Model model(argv[1]);
        std::printf("consumer: %s, %zu labels, libfer_edge %s\n", model.method().c_str(), model.labels().size(), fe_version());
    } catch (const fe::Error& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
    return 0;
}
