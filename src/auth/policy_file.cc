#include "auth/policy_file.h"

#include <sys/stat.h>
#include <yaml.h>

#include <fstream>
#include <map>
#include <sstream>

#include "common/log.h"

namespace ingot::auth {
namespace {

// libyaml (Debian's libyaml-0-2): a well-kept event parser, so Ingot checks the shape of the
// document itself and never builds a tree of the untrusted text.
class YamlParser {
 public:
  explicit YamlParser(std::string_view text) {
    yaml_parser_initialize(&p_);
    yaml_parser_set_input_string(&p_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
  }
  ~YamlParser() { yaml_parser_delete(&p_); }
  // false on a syntax error (error() then says what and where).
  bool Next(yaml_event_t& e) { return yaml_parser_parse(&p_, &e) != 0; }
  std::string error(const std::string& origin) const {
    return origin + ":" + std::to_string(p_.problem_mark.line + 1) + ": " +
           (p_.problem ? p_.problem : "YAML syntax error") +
           (p_.context ? std::string(" ") + p_.context : std::string());
  }

 private:
  yaml_parser_t p_;
};

struct Event {
  yaml_event_t e;
  ~Event() { yaml_event_delete(&e); }
};

}  // namespace

Result<std::vector<PolicyFileRule>> ParsePolicyYaml(std::string_view text,
                                                    const std::string& origin) {
  YamlParser parser(text);
  std::vector<PolicyFileRule> rules;
  std::map<std::string, int> seen;
  enum { kStream, kDocument, kMapping, kKeyDone, kEnd } where = kStream;
  std::string key;
  int key_line = 0;
  int documents = 0;
  while (true) {
    Event ev;
    if (!parser.Next(ev.e)) return InvalidArgument(parser.error(origin));
    const int line = static_cast<int>(ev.e.start_mark.line) + 1;
    auto fail = [&](const std::string& what) {
      return InvalidArgument(origin + ":" + std::to_string(line) + ": " + what);
    };
    switch (ev.e.type) {
      case YAML_STREAM_START_EVENT:
        break;
      case YAML_STREAM_END_EVENT:
        return rules;
      case YAML_DOCUMENT_START_EVENT:
        if (++documents > 1) return fail("a policy file holds one YAML document");
        where = kDocument;
        break;
      case YAML_DOCUMENT_END_EVENT:
        where = kEnd;
        break;
      case YAML_MAPPING_START_EVENT:
        if (where != kDocument) return fail("rules must be \"name\": \"rule\" pairs (strings)");
        where = kMapping;
        break;
      case YAML_MAPPING_END_EVENT:
        where = kEnd;
        break;
      case YAML_SCALAR_EVENT: {
        std::string value(reinterpret_cast<const char*>(ev.e.data.scalar.value),
                          ev.e.data.scalar.length);
        if (where == kDocument) {
          // An empty document ("" or only comments) is an empty policy; anything else is not.
          if (!value.empty()) return fail("a policy file is a mapping of rule names to rules");
          where = kEnd;
        } else if (where == kMapping) {
          if (value.empty()) return fail("a rule needs a name");
          key = value;
          key_line = line;
          where = kKeyDone;
        } else if (where == kKeyDone) {
          if (auto [it, fresh] = seen.emplace(key, key_line); !fresh) {
            return fail("rule \"" + key + "\" is defined twice (also line " +
                        std::to_string(it->second) + ")");
          }
          rules.push_back({key, value, key_line});
          where = kMapping;
        } else {
          return fail("unexpected text after the rules");
        }
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
        return fail(where == kKeyDone
                        ? "rule \"" + key + "\": the list form of rules is not supported; write "
                                            "the rule as one string"
                        : "a policy file is a mapping of rule names to rules");
      case YAML_ALIAS_EVENT:
        return fail("YAML aliases are not accepted in a policy file");
      default:
        return fail("unexpected YAML");
    }
  }
}

Status LoadPolicyFile(Policy& policy, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("policy file " + path + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > (4 << 20)) return InvalidArgument("policy file " + path + ": over 4 MiB");
  INGOT_ASSIGN_OR_RETURN(auto rules, ParsePolicyYaml(text, path));
  return policy.Override(rules, path);
}

namespace {
std::pair<int64_t, int64_t> Stamp(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return {-1, -1};
  return {static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_size) ^ (static_cast<int64_t>(st.st_ino) << 20)};
}
}  // namespace

PolicyFileWatcher::PolicyFileWatcher(Policy& policy, std::string path,
                                     std::chrono::milliseconds interval)
    : policy_(policy), path_(std::move(path)), interval_(interval) {
  thread_ = std::thread([this] { Run(); });
}

PolicyFileWatcher::~PolicyFileWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PolicyFileWatcher::Run() {
  auto last = Stamp(path_);
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, interval_, [this] { return stopping_; })) return;
    }
    auto now = Stamp(path_);
    if (now == last) continue;
    last = now;
    if (now.first < 0) {
      log::Warn("policy.file_missing", {{"path", path_}, {"kept", "the rules in force"}});
      continue;
    }
    if (Status s = LoadPolicyFile(policy_, path_); !s.ok()) {
      log::Error("policy.reload_failed", {{"error", s.message()}, {"kept", "the rules in force"}});
      continue;
    }
    reloads_.fetch_add(1);
    log::Info("policy.reloaded", {{"path", path_}});
  }
}

}  // namespace ingot::auth
