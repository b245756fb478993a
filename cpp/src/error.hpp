// Internal errors: thrown inside the library, turned into an fe_status + message at the C boundary.
#pragma once

#include <stdexcept>
#include <string>

#include "fer_edge/fer_edge.h"

namespace fei {

// A problem with a status code and a one-line message saying what was wrong and what to do.
class Error : public std::runtime_error {
public:
    Error(fe_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    fe_status status() const noexcept { return status_; }

private:
    fe_status status_;
};

[[noreturn]] inline void fail(fe_status status, const std::string& message) { throw Error(status, message); }

// The first line of an engine's message (OpenVINO and others put C++ context on later lines).
std::string first_line(const std::string& text);

}  // namespace fei
