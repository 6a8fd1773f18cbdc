// examples/cli/args.hpp: the command line of the `dcsldm` tool: `--name value` and `--flag` options,
// declared per subcommand, with typed access, range checks and errors that name the option.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace cli {

/// A usage error: printed with the subcommand's usage hint, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct OptionSpec {
  std::string name;  ///< without the leading "--"
  std::string meta;  ///< value placeholder ("" for a flag)
  std::string help;
  std::string def;   ///< default shown in --help ("" = none)
};

class Args {
 public:
  Args(std::string command, std::string summary, std::vector<OptionSpec> specs)
      : command_(std::move(command)), summary_(std::move(summary)), specs_(std::move(specs)) {
    specs_.push_back({"help", "", "show this help and exit", ""});
  }

  /// Parses argv[first..argc). Throws UsageError for unknown options, missing values, repeated options.
  void parse(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "' (options start with --)");
      std::string name = a.substr(2), value;
      const auto eq = name.find('=');
      bool has_inline = false;
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_inline = true;
      }
      const OptionSpec* s = find(name);
      if (!s) throw UsageError("unknown option '--" + name + "' for '" + command_ + "' (see dcsldm " + command_ + " --help)");
      if (values_.count(name)) throw UsageError("option '--" + name + "' given twice");
      if (s->meta.empty()) {
        if (has_inline) throw UsageError("option '--" + name + "' takes no value");
        values_[name] = "1";
      } else {
        if (!has_inline) {
          if (i + 1 >= argc) throw UsageError("option '--" + name + "' needs a value (" + s->meta + ")");
          value = argv[++i];
        }
        values_[name] = value;
      }
    }
  }

  bool help() const { return has("help"); }
  bool has(const std::string& n) const { return values_.count(n) != 0; }

  std::string str(const std::string& n, const std::string& def = "") const {
    auto it = values_.find(n);
    return it == values_.end() ? def : it->second;
  }
  std::string required(const std::string& n) const {
    if (!has(n)) throw UsageError("missing required option '--" + n + "'");
    return str(n);
  }
  long long integer(const std::string& n, long long def, long long lo, long long hi) const {
    if (!has(n)) return def;
    return parse_int(n, str(n), lo, hi);
  }
  double real(const std::string& n, double def, double lo, double hi) const {
    if (!has(n)) return def;
    const std::string v = str(n);
    errno = 0;
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno != 0 || !(d == d))
      throw UsageError("option '--" + n + "': '" + v + "' is not a number");
    if (d < lo || d > hi) {
      std::ostringstream o;
      o << "option '--" << n << "': " << v << " is out of range [" << lo << ", " << hi << "]";
      throw UsageError(o.str());
    }
    return d;
  }
  /// A comma-separated list of integers, each in [lo, hi].
  std::vector<int> int_list(const std::string& n, const std::vector<int>& def, long long lo, long long hi) const {
    if (!has(n)) return def;
    std::vector<int> r;
    std::stringstream ss(str(n));
    std::string tok;
    while (std::getline(ss, tok, ',')) r.push_back(int(parse_int(n, tok, lo, hi)));
    if (r.empty()) throw UsageError("option '--" + n + "': empty list");
    return r;
  }

  std::string usage() const {
    std::ostringstream o;
    o << "usage: dcsldm " << command_ << " [options]\n\n" << summary_ << "\n\noptions:\n";
    for (const auto& s : specs_) {
      std::string left = "  --" + s.name + (s.meta.empty() ? "" : " " + s.meta);
      if (left.size() < 30) left.resize(30, ' ');
      else left += "\n" + std::string(30, ' ');
      o << left << s.help;
      if (!s.def.empty()) o << " (default: " << s.def << ")";
      o << "\n";
    }
    return o.str();
  }
  const std::string& command() const { return command_; }

 private:
  const OptionSpec* find(const std::string& n) const {
    for (const auto& s : specs_)
      if (s.name == n) return &s;
    return nullptr;
  }
  static long long parse_int(const std::string& n, const std::string& v, long long lo, long long hi) {
    errno = 0;
    char* end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0) throw UsageError("option '--" + n + "': '" + v + "' is not an integer");
    if (x < lo || x > hi)
      throw UsageError("option '--" + n + "': " + v + " is out of range [" + std::to_string(lo) + ", " +
                       std::to_string(hi) + "]");
    return x;
  }
  std::string command_, summary_;
  std::vector<OptionSpec> specs_;
  std::map<std::string, std::string> values_;
};

}  // namespace cli
