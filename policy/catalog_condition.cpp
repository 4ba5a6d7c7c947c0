// SPDX-License-Identifier: MIT
// Condition: the `when` of a catalog row, a boolean expression over [features].
//   expr    := and ( "||" and )*
//   and     := unary ( "&&" unary )*
//   unary   := "!" unary | primary
//   primary := feature | "true" | "false" | "(" expr ")"
// Parsed by recursive descent straight into postfix (RPN), evaluated with a stack.
#include <cctype>
#include <string>
#include <vector>

#include "policy/catalog.h"

namespace amlfw {

namespace {

constexpr size_t kMaxConditionLength = 1024;
constexpr int kMaxDepth = 32;

enum class Tok : uint8_t { kName, kAnd, kOr, kNot, kOpen, kClose, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;
  size_t col = 0;  // 1-based column in the condition text
};

bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

const std::vector<std::string>& feature_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& [name, on] : kFeatureDefaults) v.push_back(name);
    return v;
  }();
  return names;
}

bool known_feature(const std::string& name) {
  for (const auto& f : feature_names())
    if (f == name) return true;
  return false;
}

std::string joined_features() {
  std::string out;
  for (const auto& f : feature_names()) out += (out.empty() ? "" : ", ") + f;
  return out;
}

class ConditionParser {
 public:
  explicit ConditionParser(std::string_view text) : text_(text) {}

  Status run(std::vector<std::string>* rpn) {
    AMLFW_TRY(tokenize());
    rpn_ = rpn;
    AMLFW_TRY(parse_or(0));
    if (peek().kind != Tok::kEnd) {
      if (peek().kind == Tok::kClose) return fail("unmatched ')' at column " + std::to_string(peek().col));
      return fail("expected '&&' or '||' before '" + peek().text + "' at column " + std::to_string(peek().col));
    }
    return {};
  }

 private:
  Error fail(const std::string& what) const {
    return data_error("condition '" + std::string(text_) + "': " + what);
  }

  Status tokenize() {
    size_t i = 0;
    while (i < text_.size()) {
      const char c = text_[i];
      const size_t col = i + 1;
      if (c == ' ' || c == '\t') {
        ++i;
      } else if (c == '(' || c == ')' || c == '!') {
        tokens_.push_back({c == '(' ? Tok::kOpen : c == ')' ? Tok::kClose : Tok::kNot, std::string(1, c), col});
        ++i;
      } else if ((c == '&' || c == '|') && i + 1 < text_.size() && text_[i + 1] == c) {
        tokens_.push_back({c == '&' ? Tok::kAnd : Tok::kOr, std::string(2, c), col});
        i += 2;
      } else if (name_char(c)) {
        size_t j = i;
        while (j < text_.size() && name_char(text_[j])) ++j;
        tokens_.push_back({Tok::kName, std::string(text_.substr(i, j - i)), col});
        i = j;
      } else {
        const bool printable = std::isprint(static_cast<unsigned char>(c)) != 0;
        return fail("unexpected " + (printable ? "'" + std::string(1, c) + "'" : std::string("character")) +
                    " at column " + std::to_string(col) + " (operators are &&, || and !, with parentheses)");
      }
    }
    tokens_.push_back({Tok::kEnd, "", text_.size() + 1});
    return {};
  }

  const Token& peek() const { return tokens_[pos_]; }
  const Token& next() { return tokens_[pos_++]; }

  Status parse_or(int depth) {
    AMLFW_TRY(parse_and(depth));
    while (peek().kind == Tok::kOr) {
      next();
      AMLFW_TRY(parse_and(depth));
      rpn_->push_back("||");
    }
    return {};
  }

  Status parse_and(int depth) {
    AMLFW_TRY(parse_unary(depth));
    while (peek().kind == Tok::kAnd) {
      next();
      AMLFW_TRY(parse_unary(depth));
      rpn_->push_back("&&");
    }
    return {};
  }

  Status parse_unary(int depth) {
    if (depth > kMaxDepth) return fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    if (peek().kind == Tok::kNot) {
      next();
      AMLFW_TRY(parse_unary(depth + 1));
      rpn_->push_back("!");
      return {};
    }
    return parse_primary(depth);
  }

  Status parse_primary(int depth) {
    const Token& t = next();
    switch (t.kind) {
      case Tok::kName:
        if (t.text == "true" || t.text == "false" || known_feature(t.text)) {
          rpn_->push_back(t.text);
          return {};
        } else {
          const std::string s = suggest(t.text, feature_names());
          return fail("unknown feature '" + t.text + "'" +
                      (s.empty() ? " (features are " + joined_features() + ")" : " (did you mean '" + s + "'?)"));
        }
      case Tok::kOpen: {
        AMLFW_TRY(parse_or(depth + 1));
        if (peek().kind != Tok::kClose) {
          if (peek().kind == Tok::kEnd) return fail("missing ')' for the '(' at column " + std::to_string(t.col));
          return fail("expected ')' before '" + peek().text + "' at column " + std::to_string(peek().col));
        }
        next();
        return {};
      }
      case Tok::kEnd:
        return fail("expected a feature, true, false, '!' or '(' at the end");
      default:
        return fail("expected a feature, true, false, '!' or '(' before '" + t.text + "' at column " +
                    std::to_string(t.col));
    }
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  std::vector<std::string>* rpn_ = nullptr;
};

}  // namespace

Result<Condition> Condition::parse(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty()) return data_error("empty condition (write \"true\" for a row that always applies)");
  for (char ch : text)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
      return data_error("condition has a control character (write it on one line)");
  if (text.size() > kMaxConditionLength)
    return data_error("condition longer than " + std::to_string(kMaxConditionLength) + " characters");
  Condition c;
  c.text_ = std::string(text);
  ConditionParser parser(text);
  AMLFW_TRY(parser.run(&c.rpn_));
  return c;
}

bool Condition::eval(const std::map<std::string, bool>& features) const {
  if (rpn_.empty()) return true;  // a default-constructed condition: always
  std::vector<bool> stack;
  stack.reserve(rpn_.size());
  for (const auto& t : rpn_) {
    if (t == "&&" || t == "||") {
      if (stack.size() < 2) return false;  // unreachable for a parsed condition
      const bool b = stack.back();
      stack.pop_back();
      stack.back() = t == "&&" ? (stack.back() && b) : (stack.back() || b);
    } else if (t == "!") {
      if (stack.empty()) return false;
      stack.back() = !stack.back();
    } else if (t == "true" || t == "false") {
      stack.push_back(t == "true");
    } else if (auto it = features.find(t); it != features.end()) {
      stack.push_back(it->second);
    } else {
      bool value = false;  // a feature missing from the map takes its documented default
      for (const auto& [name, on] : kFeatureDefaults)
        if (name == t) value = on;
      stack.push_back(value);
    }
  }
  return stack.size() == 1 && stack.back();
}

}  // namespace amlfw
