/*
 * names.c - which names and link targets may land in QubesIncoming.
 *
 * The receiver checks every name with these functions; the sender runs
 * the same checks first, so that a name the receiver would refuse is
 * reported before anything is sent, and a name outside the allow-list
 * makes it call qubes.Filecopy+allow-all-names (policy can treat that
 * call separately, as in Qubes).
 *
 * Always refused: invalid UTF-8 (overlong forms, surrogates, > U+10FFFF),
 * control characters (C0, DEL, C1): they forge terminal output and break
 * tools. The allow-list (lifted by allow-all-names): printable ASCII and
 * the letters, punctuation and symbols of common scripts. It leaves out
 * what makes a name look like another: format characters (bidirectional
 * overrides, zero-width joiners, soft hyphen), combining marks, private
 * use, line/paragraph separators, unassigned and special code points.
 */
#include "filecopy_internal.h"

#include <errno.h>
#include <string.h>

/* Code point ranges of the allow-list (inclusive), sorted. */
static const uint32_t allowed[][2] = {
    {0x0020, 0x007E},   /* printable ASCII */
    {0x00A0, 0x00AC},   /* Latin-1 punctuation and symbols (U+00AD soft hyphen is invisible) */
    {0x00AE, 0x024F},   /* Latin-1 letters, Latin Extended-A and -B */
    {0x0370, 0x0377}, {0x037A, 0x037F}, {0x0384, 0x038A}, {0x038C, 0x038C}, {0x038E, 0x03A1},
    {0x03A3, 0x03FF},   /* Greek */
    {0x0400, 0x0482}, {0x048A, 0x052F},   /* Cyrillic, without its combining marks */
    {0x05D0, 0x05EA},   /* Hebrew letters */
    {0x0621, 0x064A}, {0x0660, 0x0669},   /* Arabic letters and digits */
    {0x1E00, 0x1EFF},   /* Latin Extended Additional */
    {0x2010, 0x2027},   /* dashes, quotes, bullets, ellipsis */
    {0x2030, 0x205E},   /* per mille, primes, more punctuation */
    {0x20A0, 0x20C0},   /* currency */
    {0x2100, 0x214F},   /* letterlike symbols */
    {0x2150, 0x218B},   /* number forms */
    {0x2190, 0x23FF},   /* arrows, mathematical and technical symbols */
    {0x2460, 0x27BF},   /* enclosed alphanumerics, box drawing, shapes, dingbats */
    {0x3000, 0x303F},   /* CJK punctuation */
    {0x3041, 0x3096}, {0x30A0, 0x30FF},   /* Hiragana, Katakana */
    {0x3400, 0x4DBF}, {0x4E00, 0x9FFF},   /* CJK ideographs */
    {0xAC00, 0xD7A3},   /* Hangul syllables */
    {0xFF01, 0xFF60},   /* fullwidth forms */
    {0x1F300, 0x1F5FF}, {0x1F600, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F900, 0x1F9FF},   /* emoji */
};

static int in_allow_list(uint32_t cp) {
    size_t lo = 0, hi = sizeof allowed / sizeof allowed[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < allowed[mid][0]) hi = mid;
        else if (cp > allowed[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static int is_control(uint32_t cp) { return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0); }

/* Decodes one UTF-8 sequence at s[*i]; 0 and *cp, or -1 if invalid. */
static int next_code_point(const unsigned char *s, size_t len, size_t *i, uint32_t *cp) {
    unsigned char c = s[*i];
    if (c < 0x80) {
        *cp = c;
        *i += 1;
        return 0;
    }
    size_t n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) { n = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; v = c & 0x07; min = 0x10000; }
    else return -1;
    if (*i + n > len) return -1;
    for (size_t k = 1; k < n; k++) {
        unsigned char t = s[*i + k];
        if ((t & 0xC0) != 0x80) return -1;
        v = (v << 6) | (t & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return -1;   /* overlong, too big, surrogate */
    *cp = v;
    *i += n;
    return 0;
}

/* Characters that change how the rest of a name is displayed (bidi
 * overrides and isolates, zero-width characters, the BOM): refused even
 * with allow-all-names, so "invoice\u202Efdp.exe" cannot pose as a PDF in
 * a file manager. */
static int is_display_trick(uint32_t cp) {
    return (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
           cp == 0xFEFF;
}

/* Character rules for one string (components are split by the caller). */
static int check_characters(const char *s, size_t len, int allow_all, const char **why) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (next_code_point(u, len, &i, &cp) != 0) {
            *why = "is not valid UTF-8";
            return EILSEQ;
        }
        if (cp == 0) {
            *why = "contains a NUL byte";
            return EINVAL;
        }
        if (is_control(cp)) {
            *why = "contains a control character";
            return EILSEQ;
        }
        if (is_display_trick(cp)) {
            *why = "contains an invisible or direction-changing character";
            return EILSEQ;
        }
        if (!allow_all && !in_allow_list(cp)) {
            *why = "contains a character outside the allow-list (the sender must ask for allow-all-names)";
            return EILSEQ;
        }
    }
    return 0;
}

int fc_needs_all_names(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (next_code_point(u, len, &i, &cp) != 0) return 0;   /* refused either way: not our question */
        if (!is_control(cp) && !is_display_trick(cp) && !in_allow_list(cp)) return 1;
    }
    return 0;
}

int fc_check_name(const char *name, size_t len, int allow_all, const char **why) {
    if (len == 0) {
        *why = "is empty";
        return EINVAL;
    }
    if (name[0] == '/') {
        *why = "is an absolute path";
        return EINVAL;
    }
    int rc = check_characters(name, len, allow_all, why);
    if (rc != 0) return rc;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '/') continue;
        size_t clen = i - start;
        const char *c = name + start;
        if (clen == 0) {
            *why = i == len ? "ends with '/'" : "has an empty component (repeated '/')";
            return EINVAL;
        }
        if ((clen == 1 && c[0] == '.') || (clen == 2 && c[0] == '.' && c[1] == '.')) {
            *why = "has a '.' or '..' component";
            return EINVAL;
        }
        if (clen > 255) {
            *why = "has a component longer than 255 bytes";
            return ENAMETOOLONG;
        }
        start = i + 1;
    }
    return 0;
}

int fc_check_link(const char *name, const char *target, size_t target_len, int allow_all, const char **why) {
    /* A link's directory depth below its top-level entry: "top/a/link" -> 1.
     * Its target may climb at most that many levels, and only at its start
     * (a ".." after a component could climb out through a link). */
    size_t slashes = 0;
    for (const char *p = name; *p; p++) slashes += *p == '/';
    if (slashes == 0) {
        *why = "is a symbolic link at top level (only links inside a directory are accepted)";
        return EINVAL;
    }
    size_t may_climb = slashes - 1;
    if (target_len == 0) {
        *why = "is a symbolic link with an empty target";
        return EINVAL;
    }
    if (target[0] == '/') {
        *why = "is a symbolic link with an absolute target";
        return EINVAL;
    }
    int rc = check_characters(target, target_len, allow_all, why);
    if (rc != 0) {
        *why = "is a symbolic link whose target has a character that is refused";
        return rc;
    }
    size_t start = 0, climbed = 0;
    int leading = 1;
    for (size_t i = 0; i <= target_len; i++) {
        if (i < target_len && target[i] != '/') continue;
        size_t clen = i - start;
        const char *c = target + start;
        if (clen == 0 || (clen == 1 && c[0] == '.')) {
            *why = "is a symbolic link whose target has an empty or '.' component";
            return EINVAL;
        }
        if (clen == 2 && c[0] == '.' && c[1] == '.') {
            if (!leading) {
                *why = "is a symbolic link whose target has '..' after a name";
                return EINVAL;
            }
            if (++climbed > may_climb) {
                *why = "is a symbolic link whose target climbs out of its top-level entry";
                return EINVAL;
            }
        } else {
            leading = 0;
        }
        start = i + 1;
    }
    return 0;
}

void fc_printable(char *out, size_t out_size, const char *s, size_t len) {
    if (out_size < 8) {
        if (out_size > 0) out[0] = 0;
        return;
    }
    size_t o = 0, i = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (i < len && o + 8 < out_size) {
        size_t at = i;
        uint32_t cp;
        if (next_code_point(u, len, &i, &cp) != 0 || is_control(cp) || !in_allow_list(cp)) {
            out[o++] = '?';
            if (i == at) i++;
            continue;
        }
        memcpy(out + o, s + at, i - at);
        o += i - at;
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}
