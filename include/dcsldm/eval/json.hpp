// dcsldm/eval/json.hpp: a small streaming JSON writer for the evaluation reports, and atomic writing
// of text files.
//
// Numbers: integers as they are; doubles in the shortest of %.15g, %.16g, %.17g that reads back to the
// same double (so every value round-trips exactly); NaN and +-inf, which JSON cannot represent, are
// written as null. Strings are escaped per RFC 8259 (", \, control characters as \uXXXX; bytes >= 0x80
// are passed through, i.e. UTF-8 stays UTF-8).
// Layout: containers opened with `inline_ = true` are written on one line ({"a": 1, "b": 2}); the
// others put each member on its own line, indented by two spaces per level.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/io/safetensors.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace dcsldm::eval {

/// A JSON text built by calls in document order: begin_object / key / value / end_object, etc.
/// Misuse (a value where a key is expected, unbalanced ends) throws dcsldm::Error.
class JsonWriter {
 public:
  JsonWriter& begin_object(bool inline_ = false) { return open('{', inline_); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array(bool inline_ = false) { return open('[', inline_); }
  JsonWriter& end_array() { return close(']'); }

  /// The key of the next member of the current object.
  JsonWriter& key(const std::string& k) {
    DCSLDM_REQUIRE(!stack_.empty() && stack_.back().bracket == '{' && !stack_.back().key_pending, "json_writer",
                   "key '", k, "' outside an object or after another key");
    separator();
    append_string(k);
    out_ += ": ";
    stack_.back().key_pending = true;
    return *this;
  }

  JsonWriter& value(const std::string& s) {
    before_value();
    append_string(s);
    return *this;
  }
  JsonWriter& value(const char* s) { return value(std::string(s)); }
  JsonWriter& value(bool b) {
    before_value();
    out_ += b ? "true" : "false";
    return *this;
  }
  JsonWriter& value(double x) {
    before_value();
    out_ += number(x);
    return *this;
  }
  JsonWriter& value(float x) { return value(double(x)); }
  JsonWriter& value(int x) { return value(static_cast<long long>(x)); }
  JsonWriter& value(long x) { return value(static_cast<long long>(x)); }
  JsonWriter& value(long long x) {
    before_value();
    out_ += std::to_string(x);
    return *this;
  }
  JsonWriter& value(unsigned x) { return value(static_cast<unsigned long long>(x)); }
  JsonWriter& value(unsigned long x) { return value(static_cast<unsigned long long>(x)); }
  JsonWriter& value(unsigned long long x) {
    before_value();
    out_ += std::to_string(x);
    return *this;
  }
  JsonWriter& null() {
    before_value();
    out_ += "null";
    return *this;
  }
  /// key(k).value(v) in one call.
  template <class T>
  JsonWriter& field(const std::string& k, const T& v) {
    key(k);
    return value(v);
  }

  /// The text; throws when containers are still open.
  const std::string& str() const {
    DCSLDM_REQUIRE(stack_.empty() && !out_.empty(), "json_writer", stack_.size(), " container(s) still open");
    return out_;
  }

  /// A double as JSON: shortest round-tripping %.15g..%.17g; "null" for NaN and infinities.
  static std::string number(double x) {
    if (!std::isfinite(x)) return "null";
    char b[40];
    for (int prec = 15; prec <= 17; ++prec) {
      std::snprintf(b, sizeof b, "%.*g", prec, x);
      if (std::strtod(b, nullptr) == x) break;
    }
    return b;
  }

 private:
  struct Level {
    char bracket;
    bool inline_;
    bool empty = true;
    bool key_pending = false;
  };

  JsonWriter& open(char bracket, bool inline_) {
    before_value();
    out_ += bracket;
    // A container inside an inline one is inline too.
    const bool in = inline_ || (!stack_.empty() && stack_.back().inline_);
    stack_.push_back(Level{bracket, in});
    return *this;
  }
  JsonWriter& close(char bracket) {
    const char want = bracket == '}' ? '{' : '[';
    DCSLDM_REQUIRE(!stack_.empty() && stack_.back().bracket == want && !stack_.back().key_pending, "json_writer",
                   "'", bracket, "' does not close an open ", bracket == '}' ? "object" : "array",
                   " (or a key has no value)");
    const Level l = stack_.back();
    stack_.pop_back();
    if (!l.empty && !l.inline_) newline();
    out_ += bracket;
    if (stack_.empty()) out_ += '\n';
    return *this;
  }
  void newline() {
    out_ += '\n';
    out_.append(2 * stack_.size(), ' ');
  }
  // Comma and line break before a member (key or array element).
  void separator() {
    Level& l = stack_.back();
    if (!l.empty) out_ += ',';
    if (l.inline_) {
      if (!l.empty) out_ += ' ';
    } else {
      newline();
    }
    l.empty = false;
  }
  void before_value() {
    if (stack_.empty()) {
      DCSLDM_REQUIRE(out_.empty(), "json_writer", "a second top-level value");
      return;
    }
    Level& l = stack_.back();
    if (l.bracket == '{') {
      DCSLDM_REQUIRE(l.key_pending, "json_writer", "a value in an object needs a key first");
      l.key_pending = false;
    } else {
      separator();
    }
  }
  void append_string(const std::string& s) {
    out_ += '"';
    for (unsigned char c : s) {
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        case '\b': out_ += "\\b"; break;
        case '\f': out_ += "\\f"; break;
        default:
          if (c < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", unsigned(c));
            out_ += b;
          } else {
            out_ += char(c);
          }
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<Level> stack_;
};

/// Writes `text` to `path` atomically: a temporary file in the same folder, fsync'd and renamed over
/// `path` (io::SafeTensorsWriter::write_atomic); an existing file is replaced whole or not at all.
/// Throws dcsldm::Error naming `path` (and the reason) when it cannot be written.
inline void write_json_atomic(const std::string& path, const std::string& text) {
  try {
    io::SafeTensorsWriter::write_atomic(path, std::vector<unsigned char>(text.begin(), text.end()));
  } catch (const Error& e) {
    detail::fail("write_json_atomic", "cannot write '", path, "': ", e.what());
  }
}

}  // namespace dcsldm::eval
