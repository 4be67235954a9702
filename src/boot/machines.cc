#include "boot/machines.h"

#include <algorithm>
#include <cctype>

#include "common/uuid.h"

namespace ingot::boot {

// ------------------------------------------------------------------------------------- selectors
struct Selector::Node {
  enum class Kind { kOr, kAnd, kEq, kNe, kIn } kind;
  std::vector<std::shared_ptr<const Node>> kids;  // kOr, kAnd
  std::string key;                                // kEq, kNe, kIn: "mac", "label.rack", ...
  std::vector<std::string> values;                // normalised like the key's facts
};

namespace {
using Node = Selector::Node;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("._:/@+-").find(c) != std::string_view::npos;
}

bool IsIdentityKey(std::string_view key) {
  return key == "mac" || key == "uuid" || key == "serial";
}

class SelectorParser {
 public:
  explicit SelectorParser(std::string_view text) : text_(text) {}

  Result<std::shared_ptr<const Node>> Parse() {
    INGOT_ASSIGN_OR_RETURN(auto root, Expr(0));
    Skip();
    if (pos_ != text_.size()) return Error("unexpected '" + std::string(text_.substr(pos_, 12)) + "'");
    return root;
  }

 private:
  Status Error(const std::string& m) const {
    return InvalidArgument("selector, at character " + std::to_string(pos_ + 1) + ": " + m);
  }
  void Skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  // The next token, without consuming it: a word, a quoted string, or an operator.
  std::string Peek() {
    Skip();
    if (pos_ >= text_.size()) return "";
    char c = text_[pos_];
    for (std::string_view op : {"||", "&&", "!=", "=", "(", ")", ","}) {
      if (text_.substr(pos_, op.size()) == op) return std::string(op);
    }
    if (c == '"') return "\"";
    size_t end = pos_;
    while (end < text_.size() && IsWordChar(text_[end])) ++end;
    return std::string(text_.substr(pos_, end - pos_));
  }
  bool Keyword(std::string_view word) {
    std::string t = Peek();
    if (Lower(t) != word) return false;
    pos_ += t.size();
    return true;
  }
  bool Op(std::string_view op) {
    if (Peek() != op) return false;
    pos_ += op.size();
    return true;
  }
  Result<std::string> Value() {
    std::string t = Peek();
    if (t == "\"") {
      std::string out;
      for (++pos_; pos_ < text_.size() && text_[pos_] != '"'; ++pos_) {
        if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
        out += text_[pos_];
      }
      if (pos_ >= text_.size()) return Error("a quoted value is never closed");
      ++pos_;
      return out;
    }
    if (t.empty() || !IsWordChar(t[0])) return Error("a value was expected");
    pos_ += t.size();
    return t;
  }

  Result<std::shared_ptr<const Node>> Expr(int depth) {
    if (depth > 32) return Error("parentheses nest too deeply");
    auto node = std::make_shared<Node>(Node{Node::Kind::kOr, {}, {}, {}});
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(auto conj, Conj(depth));
      node->kids.push_back(std::move(conj));
      if (!Op("||") && !Keyword("or")) break;
    }
    if (node->kids.size() == 1) return node->kids.front();
    return std::shared_ptr<const Node>(node);
  }
  Result<std::shared_ptr<const Node>> Conj(int depth) {
    auto node = std::make_shared<Node>(Node{Node::Kind::kAnd, {}, {}, {}});
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(auto f, Factor(depth));
      node->kids.push_back(std::move(f));
      if (!Op("&&") && !Keyword("and")) break;
    }
    if (node->kids.size() == 1) return node->kids.front();
    return std::shared_ptr<const Node>(node);
  }
  Result<std::shared_ptr<const Node>> Factor(int depth) {
    if (Op("(")) {
      INGOT_ASSIGN_OR_RETURN(auto inner, Expr(depth + 1));
      if (!Op(")")) return Error("')' expected");
      return inner;
    }
    std::string key = Peek();
    if (key.empty() || !std::isalpha(static_cast<unsigned char>(key[0]))) {
      return Error("a key (mac, uuid, serial, hostname, arch, label.NAME) was expected");
    }
    pos_ += key.size();
    std::string lower = Lower(key);
    if (lower == "mac" || lower == "uuid" || lower == "serial" || lower == "hostname" ||
        lower == "arch") {
      key = lower;
    } else if (lower.rfind("label.", 0) != 0) {
      key = "label." + key;  // a bare name is a label, as in matchbox's selectors
    } else {
      key = "label." + key.substr(6);
    }
    if (key == "label.") return Error("a label name was expected after 'label.'");
    auto node = std::make_shared<Node>(Node{Node::Kind::kEq, {}, key, {}});
    if (Op("!=")) {
      node->kind = Node::Kind::kNe;
    } else if (Op("=")) {
      Op("=");  // "==" reads as "="
    } else if (Keyword("in")) {
      node->kind = Node::Kind::kIn;
      if (!Op("(")) return Error("'(' expected after 'in'");
      for (;;) {
        INGOT_ASSIGN_OR_RETURN(std::string v, Value());
        node->values.push_back(std::move(v));
        if (Op(")")) break;
        if (!Op(",")) return Error("',' or ')' expected in the list");
      }
    } else {
      return Error("'=', '!=' or 'in' expected after '" + key + "'");
    }
    if (node->kind != Node::Kind::kIn) {
      INGOT_ASSIGN_OR_RETURN(std::string v, Value());
      node->values.push_back(std::move(v));
    }
    for (std::string& v : node->values) {
      if (key == "mac") {
        auto mac = NormalizeMac(v);
        if (!mac) return Error("'" + v + "' is not a MAC address");
        v = *mac;
      } else if (key == "uuid") {
        auto uuid = NormalizeUuid(v);
        if (!uuid) return Error("'" + v + "' is not a UUID");
        v = *uuid;
      }
    }
    return std::shared_ptr<const Node>(node);
  }

  std::string_view text_;
  size_t pos_ = 0;
};

std::optional<Specificity> Eval(const Node& n, const Facts& facts) {
  switch (n.kind) {
    case Node::Kind::kOr: {
      std::optional<Specificity> best;
      for (const auto& k : n.kids) {
        if (auto s = Eval(*k, facts); s && (!best || *best < *s)) best = s;
      }
      return best;
    }
    case Node::Kind::kAnd: {
      Specificity sum;
      for (const auto& k : n.kids) {
        auto s = Eval(*k, facts);
        if (!s) return std::nullopt;
        sum.identity += s->identity;
        sum.other += s->other;
      }
      return sum;
    }
    case Node::Kind::kEq:
    case Node::Kind::kIn:
    case Node::Kind::kNe: {
      auto it = facts.find(n.key);
      bool present = it != facts.end() && !it->second.empty();
      bool found = false;
      if (present) {
        for (const std::string& v : n.values) {
          bool eq = n.key == "hostname" ? Lower(v) == Lower(it->second) : v == it->second;
          if (eq) found = true;
        }
      }
      if (n.kind == Node::Kind::kNe) {
        if (found) return std::nullopt;
        return Specificity{};
      }
      if (!found) return std::nullopt;
      return IsIdentityKey(n.key) ? Specificity{1, 0} : Specificity{0, 1};
    }
  }
  return std::nullopt;
}

bool ValidName(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

}  // namespace

Result<Selector> Selector::Parse(std::string_view text) {
  if (text.size() > 4096) return InvalidArgument("selector: longer than 4096 characters");
  SelectorParser p(text);
  INGOT_ASSIGN_OR_RETURN(auto root, p.Parse());
  Selector s;
  s.text_ = std::string(text);
  s.root_ = std::move(root);
  return s;
}

std::optional<Specificity> Selector::Match(const Facts& facts) const {
  if (!root_) return std::nullopt;
  return Eval(*root_, facts);
}

std::optional<std::string> NormalizeMac(std::string_view text) {
  std::string hex;
  for (char c : text) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (c != ':' && c != '-' && c != '.') {
      return std::nullopt;
    }
  }
  if (hex.size() != 12) return std::nullopt;
  // The separators, when there are any, must split the digits evenly (aa:bb:.., aabb.ccdd.eeff).
  std::string out;
  for (size_t i = 0; i < 12; i += 2) {
    if (!out.empty()) out += ':';
    out += hex.substr(i, 2);
  }
  return out;
}

std::optional<std::string> NormalizeUuid(std::string_view text) {
  if (!IsUuid(text)) return std::nullopt;
  return Lower(CanonicalUuid(text));
}

std::string_view StateName(MachineState s) {
  return s == MachineState::kAssigned ? "assigned" : "discovered";
}

std::optional<MachineState> ParseState(std::string_view s) {
  if (s == "assigned") return MachineState::kAssigned;
  if (s == "discovered") return MachineState::kDiscovered;
  return std::nullopt;
}

std::string_view WhyName(MatchResult::Why why) {
  switch (why) {
    case MatchResult::Why::kAssigned: return "assigned";
    case MatchResult::Why::kSelector: return "selector";
    case MatchResult::Why::kDefault: return "default";
    case MatchResult::Why::kNone: return "none";
  }
  return "none";
}

Status ValidateProfile(const Profile& p) {
  if (!ValidName(p.name, 64)) {
    return InvalidArgument("profile name '" + p.name +
                           "': 1 to 64 letters, digits, '.', '_' or '-'");
  }
  if (!p.selector.empty()) {
    auto s = Selector::Parse(p.selector);
    if (!s.ok()) return s.status();
  }
  if (p.os) {
    if (!ValidName(p.os->name, 128) || !ValidName(p.os->version, 128)) {
      return InvalidArgument("os: name and version must be 1 to 128 letters, digits, '.', '_' or '-'");
    }
  }
  bool has_script = !p.ipxe.empty() || !p.grub.empty();
  if (p.kernel.empty() && !has_script && !p.os && p.image.empty()) {
    return InvalidArgument("profile '" + p.name +
                           "': give a kernel (with initrds and args), an os tree, a published "
                           "image, or an ipxe or grub script");
  }
  if (!p.image.empty() && (!ValidName(p.image, 255) || !p.kernel.empty() || p.os)) {
    return InvalidArgument("image: the name of a published image (letters, digits, '.', '_', "
                           "'-'), instead of a kernel or an os tree");
  }
  if (p.kernel.empty() && !p.initrds.empty()) {
    return InvalidArgument("profile '" + p.name + "': initrds without a kernel");
  }
  for (const std::string* path : {&p.kernel}) {
    if (HasControl(*path) || path->find(' ') != std::string::npos) {
      return InvalidArgument("kernel: a path or URL without spaces or control characters");
    }
  }
  for (const std::string& i : p.initrds) {
    if (i.empty() || HasControl(i) || i.find(' ') != std::string::npos) {
      return InvalidArgument("initrds: paths or URLs without spaces or control characters");
    }
  }
  struct Field {
    const char* name;
    const std::string* text;
  };
  for (Field f : {Field{"args", &p.args}, Field{"ipxe", &p.ipxe}, Field{"grub", &p.grub},
                  Field{"user_data", &p.user_data}, Field{"vendor_data", &p.vendor_data},
                  Field{"kernel", &p.kernel}}) {
    auto t = Template::Parse(*f.text, std::string("the ") + f.name + " of profile '" + p.name + "'");
    if (!t.ok()) return t.status();
  }
  for (const std::string& i : p.initrds) {
    auto t = Template::Parse(i, "an initrd of profile '" + p.name + "'");
    if (!t.ok()) return t.status();
  }
  if (HasControl(p.args)) return InvalidArgument("args: one line, without control characters");
  for (const auto& [k, v] : p.variables) {
    if (!ValidName(k, 128)) return InvalidArgument("variable name '" + k + "'");
  }
  return Status::Ok();
}

Status NormalizeMachine(Machine& m) {
  if (!m.mac.empty()) {
    auto mac = NormalizeMac(m.mac);
    if (!mac) return InvalidArgument("mac '" + m.mac + "' is not a MAC address");
    m.mac = *mac;
  }
  if (!m.uuid.empty()) {
    auto uuid = NormalizeUuid(m.uuid);
    if (!uuid) return InvalidArgument("uuid '" + m.uuid + "' is not a UUID");
    m.uuid = *uuid;
  }
  if (m.mac.empty() && m.uuid.empty()) return InvalidArgument("a machine needs a mac or a uuid");
  for (const std::string* s : {&m.serial, &m.hostname, &m.arch, &m.profile}) {
    if (s->size() > 255 || HasControl(*s)) {
      return InvalidArgument("serial, hostname, arch and profile: up to 255 printable characters");
    }
  }
  for (const auto& [k, v] : m.labels) {
    if (!ValidName(k, 128) || v.size() > 255 || HasControl(v)) {
      return InvalidArgument("label '" + k + "': names of letters, digits, '.', '_', '-'; printable values");
    }
  }
  for (const auto& [k, v] : m.variables) {
    if (!ValidName(k, 128)) return InvalidArgument("variable name '" + k + "'");
  }
  return Status::Ok();
}

Facts FactsOf(const Machine& m) {
  Facts f{{"mac", m.mac}, {"uuid", m.uuid}, {"serial", m.serial}, {"hostname", m.hostname},
          {"arch", m.arch}};
  for (const auto& [k, v] : m.labels) f["label." + k] = v;
  return f;
}

Variables VariablesFor(const Machine& m, const Profile* p, const Variables& extra) {
  // Built-ins first; a profile variable fills one the machine left empty (a profile may give
  // every machine a hostname pattern); the machine's own variables win over both.
  Variables v{{"id", m.id},           {"mac", m.mac},   {"uuid", m.uuid},
              {"serial", m.serial},   {"hostname", m.hostname}, {"arch", m.arch},
              {"ip", m.last_address}};
  for (const auto& [k, val] : m.labels) v["label." + k] = val;
  if (p != nullptr) {
    v["profile"] = p->name;
    for (const auto& [k, val] : p->variables) {
      auto it = v.find(k);
      if (it == v.end() || it->second.empty()) v[k] = val;
    }
  }
  for (const auto& [k, val] : m.variables) v[k] = val;
  for (const auto& [k, val] : extra) v[k] = val;
  return v;
}

MatchResult Match(const Machine& machine, const std::vector<Profile>& profiles) {
  MatchResult r;
  if (!machine.profile.empty()) {
    for (const Profile& p : profiles) {
      if (p.name == machine.profile) {
        r.profile = &p;
        r.why = MatchResult::Why::kAssigned;
        return r;
      }
    }
  }
  Facts facts = FactsOf(machine);
  const Profile* fallback = nullptr;
  for (const Profile& p : profiles) {
    if (p.is_default && (fallback == nullptr || p.name < fallback->name)) fallback = &p;
    if (p.selector.empty()) continue;
    auto sel = Selector::Parse(p.selector);  // validated when saved; a bad one never matches
    if (!sel.ok()) continue;
    auto s = sel->Match(facts);
    if (!s) continue;
    if (r.profile == nullptr || r.specificity < *s ||
        (r.specificity == *s && p.name < r.profile->name)) {
      r.profile = &p;
      r.specificity = *s;
      r.why = MatchResult::Why::kSelector;
    }
  }
  if (r.profile == nullptr && fallback != nullptr) {
    r.profile = fallback;
    r.why = MatchResult::Why::kDefault;
  }
  return r;
}

}  // namespace ingot::boot
