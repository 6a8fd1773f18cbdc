// dcsldm/core/error.hpp: the one way dcsldm reports bad input.
//
// Every failed check throws dcsldm::Error whose message starts with "dcsldm::<op>: " and names every
// extent or value involved, e.g. "dcsldm::linear_forward: x.extent(1) = 5 != weight.extent(1) = 6".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace dcsldm {

/// The exception type of the library: a message naming the operation and the offending values.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
[[noreturn]] inline void fail(const char* op, const Args&... args) {
  std::ostringstream s;
  s << "dcsldm::" << op << ": ";
  (s << ... << args);
  throw Error(s.str());
}
}  // namespace detail

}  // namespace dcsldm

/// DCSLDM_REQUIRE(cond, "op_name", parts...): throws dcsldm::Error("dcsldm::op_name: parts...") when
/// cond is false. Host code only.
#define DCSLDM_REQUIRE(cond, op, ...)                           \
  do {                                                          \
    if (!(cond)) ::dcsldm::detail::fail(op, __VA_ARGS__);       \
  } while (0)

/// DCSLDM_REQUIRE_EXTENT(op, "name", actual, expected): the common shape check.
#define DCSLDM_REQUIRE_EXTENT(op, what, actual, expected)                                  \
  DCSLDM_REQUIRE((actual) == (expected), op, what, " = ", (actual), ", expected ", (expected))
