#include "boot/templates.h"

#include <algorithm>
#include <cstdio>

namespace ingot::boot {
namespace {

bool IsNameStart(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool IsNameChar(char c) {
  return IsNameStart(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

constexpr std::string_view kFilters[] = {"urlquery", "json", "shquote"};

std::string UrlQuery(std::string_view v) {
  std::string out;
  for (unsigned char c : v) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string JsonQuote(std::string_view v) {
  std::string out = "\"";
  for (unsigned char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string ShQuote(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string GrubEscape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (std::string_view(" \"'$;|&<>{}\\#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

Result<Template> Template::Parse(std::string_view text, std::string what) {
  Template t;
  t.what_ = std::move(what);
  int line = 1;
  std::string literal;
  size_t i = 0;
  auto error = [&](const std::string& m) {
    return InvalidArgument(t.what_ + ", line " + std::to_string(line) + ": " + m);
  };
  while (i < text.size()) {
    if (text.compare(i, 2, "{{") != 0) {
      if (text[i] == '\n') ++line;
      literal += text[i++];
      continue;
    }
    size_t close = text.find("}}", i + 2);
    if (close == std::string_view::npos) return error("'{{' is never closed by '}}'");
    std::string_view inner = text.substr(i + 2, close - i - 2);
    if (inner.find('\n') != std::string_view::npos) {
      return error("a '{{ … }}' hole must stay on one line");
    }
    // Split on '|': the first part is ".name", the rest filters.
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t p = 0; p <= inner.size(); ++p) {
      if (p == inner.size() || inner[p] == '|') {
        std::string_view part = inner.substr(start, p - start);
        while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
        while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
        parts.emplace_back(part);
        start = p + 1;
      }
    }
    const std::string& ref = parts.front();
    if (ref.size() < 2 || ref[0] != '.' || !IsNameStart(ref[1]) ||
        !std::all_of(ref.begin() + 1, ref.end(), IsNameChar)) {
      return error("'{{" + std::string(inner) +
                   "}}' is not a variable; write {{.name}} (letters, digits, '_', '.', '-')");
    }
    Piece hole{true, ref.substr(1), {}, line};
    for (size_t k = 1; k < parts.size(); ++k) {
      if (std::find(std::begin(kFilters), std::end(kFilters), parts[k]) == std::end(kFilters)) {
        return error("unknown filter '" + parts[k] + "' (known: urlquery, json, shquote)");
      }
      hole.filters.push_back(parts[k]);
    }
    if (!literal.empty()) t.pieces_.push_back(Piece{false, std::move(literal), {}, line});
    literal.clear();
    t.pieces_.push_back(std::move(hole));
    i = close + 2;
  }
  if (!literal.empty()) t.pieces_.push_back(Piece{false, std::move(literal), {}, line});
  return t;
}

Result<std::string> Template::Render(const Variables& vars, TemplateContext context) const {
  std::string out;
  for (const Piece& p : pieces_) {
    if (!p.hole) {
      out += p.text;
      continue;
    }
    auto error = [&](const std::string& m) {
      return InvalidArgument(what_ + ", line " + std::to_string(p.line) + ": " + m);
    };
    auto it = vars.find(p.text);
    if (it == vars.end()) {
      std::string known;
      for (const auto& [k, v] : vars) known += (known.empty() ? "" : ", ") + k;
      return error("no value for {{." + p.text + "}} (this machine has: " + known + ")");
    }
    std::string value = it->second;
    for (const std::string& f : p.filters) {
      if (f == "urlquery") value = UrlQuery(value);
      else if (f == "json") value = JsonQuote(value);
      else if (f == "shquote") value = ShQuote(value);
    }
    if (context != TemplateContext::kText) {
      for (unsigned char c : value) {
        if (c < 0x20 || c == 0x7f) {
          return error("the value of {{." + p.text +
                       "}} holds a line break or control character, which cannot go into a " +
                       (context == TemplateContext::kIpxe ? "iPXE" : "GRUB") + " script");
        }
      }
    }
    if (context == TemplateContext::kIpxe && value.find("${") != std::string::npos) {
      return error("the value of {{." + p.text + "}} holds '${', which iPXE would expand");
    }
    if (context == TemplateContext::kGrub) value = GrubEscape(value);
    out += value;
  }
  return out;
}

std::vector<std::string> Template::Names() const {
  std::vector<std::string> names;
  for (const Piece& p : pieces_) {
    if (p.hole && std::find(names.begin(), names.end(), p.text) == names.end()) {
      names.push_back(p.text);
    }
  }
  return names;
}

Result<std::string> RenderTemplate(std::string_view text, std::string what, const Variables& vars,
                                   TemplateContext context) {
  INGOT_ASSIGN_OR_RETURN(Template t, Template::Parse(text, std::move(what)));
  return t.Render(vars, context);
}

}  // namespace ingot::boot
