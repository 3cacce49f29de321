"""Writes tokenizer_corpus.txt next to this file: the texts the tokenizer
parity tests encode. Deterministic (seeded); run it again after editing.

One text per line, lines separated by "\\n" only: a line may hold \\r, tabs,
NUL, U+0085, U+2028 and other characters that str.splitlines() would split
on, so readers must split on "\\n" (and read bytes, not text mode).
Characters come from Unicode 14 or older, which both Oniguruma (HF) and
PCRE2 classify the same way.
"""
import pathlib
import random

HERE = pathlib.Path(__file__).resolve().parent

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "It's a truth universally acknowledged, isn't it? We'll see; they'd know, I'm sure, you've heard.",
    "SHOUTING: DON'T, WON'T, CAN'T, I'M, YOU'RE, THEY'VE, WE'LL, SHE'D.",
    "Mr. O'Neil's dog's bone — the one that's 'lost' — was found at 5 o'clock.",
    "\"Quoted text,\" she said, 'and single quotes too.'",
    "Tokenizers split text into pieces; models read the pieces as ids.",
    "Fine-tuning a 135M-parameter model takes minutes, not hours.",
    "e-mail: someone@example.com, web: https://example.org/path?q=1&r=two#frag",
    "Hyphen-ated, under_scored, camelCase, PascalCase, snake_case_name, kebab-case-name.",
    "ALL CAPS and lower case and MiXeD cAsE wOrDs.",
    "Ellipsis... and dashes -- and em—dashes and en–dashes.",
    "Parentheses (like these), brackets [like these], braces {like these}.",
    "Tabs\tbetween\twords\tand a trailing tab\t",
    "   leading spaces, and trailing spaces   ",
    "multiple   spaces    between     words",
    "A line ending in a carriage return\r",
    "carriage\rreturn\r\rin the middle",
    "Windows line ending inside\r\nand more",
    "naïve café résumé façade coöperate jalapeño piñata über straße",
    "Ünïcödé wïth dïäcrïtïcs: àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿ",
    "Combining marks: e\u0301 a\u0300 o\u0308 n\u0303 (decomposed), é à ö ñ (composed)",
    "Ligatures ﬁ ﬂ ﬀ and fullwidth ＡＢＣ ａｂｃ and math 𝐀𝐁𝐂 𝑥𝑦𝑧",
    "Smart quotes “double” and ‘single’ and «guillemets» and „low“ ones.",
    "Symbols: © ® ™ § ¶ † ‡ • ° ± × ÷ ≠ ≤ ≥ ∞ √ ∑ ∏ ∫ ∂ ∇ → ← ↑ ↓ ⇒ ⇔",
    "Currency: $100, €20, £5, ¥1000, ₹250, ₿0.5, ¢99",
    "I'd've thought y'all'd've known.",
    "don't 'quote' me on 's or 't or 're",
    "Question? Exclamation! Interrobang‽ Inverted ¿question? ¡exclamation!",
    "Hello, World!",
    "hello world",
    " hello",
    "hello ",
    "a",
    "I",
    ".",
    "?!",
]

SCRIPTS = [
    "中文测试：今天天气很好，我们去公园散步吧。",
    "日本語のテキスト：東京は日本の首都です。ひらがな、カタカナ、漢字。",
    "한국어 텍스트: 안녕하세요, 만나서 반갑습니다.",
    "العربية: مرحبا بالعالم، كيف حالك اليوم؟",
    "עברית: שלום עולם, מה שלומך?",
    "Русский: Привет, мир! Как дела? Ёлка, щука, объём.",
    "Українська: Привіт, світе! Їжак, ґанок, є.",
    "हिन्दी: नमस्ते दुनिया, आप कैसे हैं?",
    "Ελληνικά: Γεια σου κόσμε! Καλημέρα. ΑΒΓΔ αβγδ",
    "ไทย: สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "বাংলা: হ্যালো বিশ্ব, আপনি কেমন আছেন?",
    "தமிழ்: வணக்கம் உலகம்",
    "ქართული: გამარჯობა მსოფლიო",
    "Հայերեն: Բարեւ աշխարհ",
    "Tiếng Việt: Xin chào thế giới, tôi là người Việt Nam.",
    "Türkçe: İstanbul'da ılık bir gün; ĞÜŞİÖÇ ğüşıöç",
    "Polski: Zażółć gęślą jaźń.",
    "Deutsch: Größenwahn, Fußgängerübergänge, Ärger, Öl, Übung.",
    "Español: ¿Dónde está la biblioteca? ¡Aquí!",
    "Português: Não há ação sem coração.",
    "Français : « C'est l'été », dit-il ; d'accord ?",
    "Amharic ግዕዝ: ሰላም ለዓለም",
    "Sinhala: ආයුබෝවන්",
    "Khmer: សួស្តីពិភពលោក",
    "Mongolian: Сайн байна уу",
    "Mixed: English中文日本語한국어العربيةРусский",
    "漢字とかなとカナとABCと123の混在テキスト",
    "数字１２３と全角ＡＢＣ",
]

CODE = [
    "def fib(n):",
    "    return n if n < 2 else fib(n - 1) + fib(n - 2)",
    "class Foo(Bar):\n",
    "    def __init__(self, x: int = 0) -> None:",
    "        self._x = x  # private",
    "print(f\"{name!r:>10} = {value:.3f}\")",
    "import numpy as np; a = np.zeros((3, 4), dtype=np.float32)",
    "lambda x, *args, **kwargs: (x, args, kwargs)",
    "#include <stdio.h>",
    "int main(int argc, char **argv) {",
    "    for (int i = 0; i < argc; i++) printf(\"%s\\n\", argv[i]);",
    "    return 0;",
    "}",
    "static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }",
    "#define MAX(a, b) ((a) > (b) ? (a) : (b))",
    "local t = setmetatable({}, {__index = function(t, k) return k .. \"!\" end})",
    "for i, v in ipairs(list) do print(i, v) end",
    "local s <close> = sw.zeros({4, 4})",
    "-- a Lua comment; --[[ a block comment ]]",
    "{\"name\": \"stepwise\", \"version\": \"0.1.0\", \"tags\": [\"c\", \"lua\"], \"ok\": true, \"n\": null}",
    "{\"nested\": {\"a\": [1, 2, {\"b\": 3.5e-7}]}, \"escaped\": \"line\\nbreak \\\"quoted\\\" \\u00e9\"}",
    "[]{}()<>",
    "x+=1;y-=2;z*=3;w/=4;v%=5;u**=6;t//=7;s&=8;r|=9;q^=10;p<<=11;o>>=12",
    "if (a && b || !c) { x = a ? b : c; } else if (d != e && f == g) {}",
    "$ ls -la | grep '\\.c$' | wc -l && echo \"done\" || exit 1",
    "<div class=\"main\"><p>Hello &amp; welcome</p><br/></div>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    "regex: ^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@[a-z]+\\.[a-z]{2,}$",
    "path/to/file.txt C:\\Windows\\System32\\drivers\\etc\\hosts ~/.config/app.toml",
    "0x1F 0b1010 0o777 1e10 -3.14e-2 1_000_000 0xDEADBEEF",
    "    \tmixed indentation\t    here",
    "\t\t\tthree tabs",
    "        eight spaces",
    "// TODO(someone): fix this 'hack' before v2.0-rc.1",
    "a = [[1, 2], [3, 4]]  # 2x2",
    "std::vector<std::pair<int, std::string>> v{{1, \"a\"}};",
    "fn main() { let x: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", x); }",
]

NUMBERS = [
    "1234567890",
    "12345678901234567890123456789012345678901234567890",
    "3.14159265358979323846264338327950288419716939937510",
    "-42, +17, 0, 007, 1,234,567.89, 1.234.567,89",
    "2024-01-15T13:45:30.123Z and 15/01/2024 and 01.15.24",
    "Phone: +1 (555) 123-4567, ext. 89",
    "IPv4 192.168.1.254 and IPv6 2001:db8::ff00:42:8329",
    "Version 1.2.3-beta.4+build.567",
    "1st 2nd 3rd 4th 21st 22nd 101st",
    "½ ¼ ¾ ⅓ ⅔ ⅛ and superscripts x² y³ and subscripts H₂O",
    "Roman numerals Ⅰ Ⅱ Ⅲ Ⅳ Ⅻ ⅼⅽⅾⅿ",
    "Arabic-Indic ٠١٢٣٤٥٦٧٨٩ and Devanagari ०१२३४५६७८९ and fullwidth ０１２３",
    "circled ① ② ③ ⑩ ⑳",
    "100% 50‰ 3×4=12 7÷2=3.5 2^10=1024",
    "0000000000000000000000000000000000000000",
    "9" * 300,
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
    "a1b2c3d4e5 x86_64 i386 arm64 sm_90 utf-8 mp3 h264",
    "$1,000,000.00 and €0,99 and ¥10,000",
]

EMOJI = [
    "🙂😀😂🤣😍🥰😎🤔🙄😴",
    "👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿",
    "👨‍👩‍👧‍👦 family, 👩‍💻 coder, 🧑‍🚀 astronaut, 🏳️‍🌈 rainbow flag, 🏴‍☠️ pirate",
    "Flags: 🇫🇷 🇩🇪 🇯🇵 🇺🇸 🇧🇷 🇮🇳 🇺🇦 🇪🇺",
    "Keycaps: 1️⃣ 2️⃣ #️⃣ *️⃣ and variation ❤️ ❤ ☺️ ☺",
    "Hearts ❤️🧡💛💚💙💜🖤🤍🤎 and hands 👋✋🖐️🖖",
    "emoji in text: I ❤️ tokenizers 🤖 and 🍕!",
    "🐍 Python 🦀 Rust 🐹 Go ☕ Java 🌙 Lua",
    "🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉",
    "⚡️🔥💯✨🌟⭐️🌈☀️🌧️❄️",
    "Skin tone ZWJ: 👩🏽‍🔬 🧑🏿‍🤝‍🧑🏻 👨🏼‍❤️‍💋‍👨🏽",
    "Dingbats ✂ ✈ ✉ ✌ ✍ ✏ ✓ ✔ ✕ ✖ ✗ ✘",
    "Box drawing ┌─┬─┐ │ │ │ └─┴─┘ and blocks ▁▂▃▄▅▆▇█",
]

WHITESPACE = [
    "",
    " ",
    "  ",
    "\t",
    "\t \t \t",
    " " * 40,
    " " * 200,
    "\t" * 20,
    "word" + " " * 10,
    " " * 10 + "word",
    "a \u00a0b\u00a0\u00a0c",
    "ideographic\u3000space\u3000\u3000here",
    "thin\u2009space and hair\u200aspace and figure\u2007space",
    "next line\u0085char and line\u2028separator and paragraph\u2029separator",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "vertical\u000btab and form\u000cfeed",
    "nul\u0000byte and \u0001\u0002\u001b[31mescape\u001b[0m",
    "soft\u00adhyphen",
    " \t \u00a0 \u3000 mixed whitespace run \u2003\u2002 ",
    "\r",
    "\r\r\r",
    "trailing\r",
]

SPECIAL = [
    "<|im_start|>user\nHello!<|im_end|>",
    "<|im_start|>system You are helpful.<|im_end|><|im_start|>assistant",
    "<s>[INST] What is 2+2? [/INST] 4</s>",
    "<s><s></s></s>",
    "<s> hello </s>",
    "<unk> and <pad> and <mask> and <bos> and <eos>",
    "<|endoftext|><|endoftext|>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|reserved_special_token_5|> <|reserved_special_token_250|>",
    "< s> <s > <S> </ s> <|im_start|",
    "im_start|> |im_end| <|im_start|><|im_start|>",
    "<<s>> <<|im_end|>> <0x0A> <0xFF> <0x41>",
    "text<|im_end|>text<|im_start|>text",
    "<repo_name>stepwise<file_sep>core/tokenizer.c<filename>x.py<gh_stars>100",
    "<jupyter_start><jupyter_code>print(1)<jupyter_output>1<empty_output>",
    "▁leading meta▁space ▁▁ and ▁",
    "Ġhello Ċ ĉ čĠ  (byte-level look-alikes)",
]

LONG = [
    "a" * 300,
    "ab" * 200,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, " * 30,
    "日本語" * 100,
    "🙂" * 100,
    ("word " * 50).strip(),
    "x" + "\u0301" * 50,
]

FRAGMENTS = ENGLISH + SCRIPTS + CODE + NUMBERS + EMOJI + SPECIAL
SEPARATORS = [" ", "", "  ", "\t", ", ", ". ", " - ", "\u00a0", "\r", "'s ", "'t", "123", " 4.5 ", "<s>", "<|im_end|>", "\u3000"]


def words(rng, pool):
    frag = rng.choice(pool)
    parts = frag.split(" ")
    a = rng.randrange(len(parts))
    b = rng.randrange(a, len(parts)) + 1
    return " ".join(parts[a:b])


def main():
    rng = random.Random(20250601)
    lines = []
    for group in (ENGLISH, SCRIPTS, CODE, NUMBERS, EMOJI, WHITESPACE, SPECIAL, LONG):
        for s in group:
            lines.extend(s.split("\n"))
    # Mixtures: pieces of different kinds joined by assorted separators.
    while len(lines) < 1100:
        k = rng.randint(1, 5)
        text = rng.choice(SEPARATORS).join(words(rng, FRAGMENTS) for _ in range(k))
        if rng.random() < 0.15:
            text = " " * rng.randint(1, 4) + text
        if rng.random() < 0.15:
            text = text + rng.choice([" ", "  ", "\t", " \t", "\r"])
        lines.append(text.replace("\n", " "))
    # Random characters from many blocks, a few at a time.
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F),
              (0xE00, 0xE7F), (0x3040, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0x1F300, 0x1F64F),
              (0x2000, 0x206F), (0xFF00, 0xFFEF)]
    for _ in range(150):
        chars = []
        for _ in range(rng.randint(1, 24)):
            lo, hi = rng.choice(ranges)
            c = rng.randint(lo, hi)
            if c in (0x0A, 0x2028, 0x2029, 0x85) or 0xD800 <= c <= 0xDFFF:
                c = 0x20
            chars.append(chr(c))
        lines.append("".join(chars))
    assert all("\n" not in s for s in lines)
    (HERE / "tokenizer_corpus.txt").write_bytes("\n".join(lines).encode("utf-8"))
    print(f"{len(lines)} lines")


if __name__ == "__main__":
    main()
