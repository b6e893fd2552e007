/* SPDX-License-Identifier: MIT */
/*
 * auth.c - passwd-file credentials, SASL PLAIN and CRAM-MD5.
 */
#include "config.h"

/* Dovecot's {CRAM-MD5} scheme stores MD5 states after the HMAC key block;
 * continuing from such a state needs the low-level MD5 interface, which
 * OpenSSL 3 keeps but marks deprecated. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "odmr/auth.h"
#include "lib/util.h"
#include "lib/wire.h"

char *wp_passwd_find(const char *text, size_t len, const char *user)
{
    size_t ulen = strlen(user);
    if (ulen == 0 || strchr(user, ':'))
        return NULL;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        if ((size_t)(eol - p) > ulen && memcmp(p, user, ulen) == 0 && p[ulen] == ':' && p[0] != '#') {
            const char *f = p + ulen + 1;
            const char *colon = memchr(f, ':', (size_t)(eol - f));
            const char *fend = colon ? colon : eol;
            while (fend > f && (fend[-1] == '\r' || fend[-1] == ' '))
                fend--;
            return wp_strndup(f, (size_t)(fend - f));
        }
        p = eol + 1;
    }
    return NULL;
}

/* Split "{SCHEME}data"; no braces means Dovecot's passwd-file default, CRYPT. */
static const char *scheme_of(const char *stored, char *scheme, size_t size)
{
    if (stored[0] == '{') {
        const char *close = strchr(stored, '}');
        if (close && (size_t)(close - stored - 1) < size) {
            size_t n = (size_t)(close - stored - 1);
            for (size_t i = 0; i < n; i++)
                scheme[i] =
                    (char)(stored[1 + i] >= 'a' && stored[1 + i] <= 'z' ? stored[1 + i] - 32 : stored[1 + i]);
            scheme[n] = '\0';
            return close + 1;
        }
    }
    wp_strlcpy(scheme, "CRYPT", size);
    return stored;
}

static bool is_plain(const char *scheme)
{
    return strcmp(scheme, "PLAIN") == 0 || strcmp(scheme, "CLEARTEXT") == 0;
}

static bool is_cram(const char *scheme)
{
    return strcmp(scheme, "CRAM-MD5") == 0 || strcmp(scheme, "HMAC-MD5") == 0;
}

static bool secret_eq(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

static bool cram_context_of(const char *stored, unsigned char ctx[WP_CRAM_CONTEXT_LEN])
{
    char scheme[32];
    const char *data = scheme_of(stored, scheme, sizeof(scheme));
    if (is_plain(scheme)) {
        wp_cram_context(data, ctx);
        return true;
    }
    if (!is_cram(scheme) || strlen(data) != 2 * WP_CRAM_CONTEXT_LEN)
        return false;
    for (size_t i = 0; i < WP_CRAM_CONTEXT_LEN; i++) {
        int hi = wp_hexval(data[2 * i]), lo = wp_hexval(data[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        ctx[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* MD5 state after one 64-byte block: key XOR pad. */
static void pad_state(const unsigned char key[64], unsigned char pad, unsigned char out[16])
{
    unsigned char block[64];
    for (int i = 0; i < 64; i++)
        block[i] = key[i] ^ pad;
    MD5_CTX c;
    MD5_Init(&c);
    MD5_Update(&c, block, sizeof(block));
    put_le32(out, c.A);
    put_le32(out + 4, c.B);
    put_le32(out + 8, c.C);
    put_le32(out + 12, c.D);
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(&c, sizeof(c));
}

void wp_cram_context(const char *secret, unsigned char ctx[WP_CRAM_CONTEXT_LEN])
{
    unsigned char key[64];
    memset(key, 0, sizeof(key));
    size_t n = strlen(secret);
    if (n > 64)
        MD5((const unsigned char *)secret, n, key); /* RFC 2104: long keys are hashed */
    else
        memcpy(key, secret, n);
    pad_state(key, 0x5c, ctx);      /* outer first, as Dovecot stores it */
    pad_state(key, 0x36, ctx + 16); /* then inner */
    OPENSSL_cleanse(key, sizeof(key));
}

/* An MD5 context that has already hashed one 64-byte block into state. */
static void resume(MD5_CTX *c, const unsigned char state[16])
{
    MD5_Init(c);
    c->A = get_le32(state);
    c->B = get_le32(state + 4);
    c->C = get_le32(state + 8);
    c->D = get_le32(state + 12);
    c->Nl = 512; /* bits hashed so far */
    c->Nh = 0;
}

void wp_cram_digest(const unsigned char ctx[WP_CRAM_CONTEXT_LEN], const char *challenge, char hex[33])
{
    unsigned char inner[16], outer[16];
    MD5_CTX c;
    resume(&c, ctx + 16);
    MD5_Update(&c, challenge, strlen(challenge));
    MD5_Final(inner, &c);
    resume(&c, ctx);
    MD5_Update(&c, inner, sizeof(inner));
    MD5_Final(outer, &c);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", outer[i]);
    OPENSSL_cleanse(&c, sizeof(c));
}

bool wp_auth_cram_capable(const char *stored)
{
    unsigned char ctx[WP_CRAM_CONTEXT_LEN];
    bool ok = cram_context_of(stored, ctx);
    OPENSSL_cleanse(ctx, sizeof(ctx));
    return ok;
}

bool wp_auth_check_cram(const char *stored, const char *challenge, const char *hex_digest)
{
    unsigned char ctx[WP_CRAM_CONTEXT_LEN];
    if (!cram_context_of(stored, ctx))
        return false;
    char want[33], got[33];
    wp_cram_digest(ctx, challenge, want);
    OPENSSL_cleanse(ctx, sizeof(ctx));
    if (strlen(hex_digest) != 32)
        return false;
    for (int i = 0; i < 32; i++)
        got[i] = wp_lower(hex_digest[i]);
    got[32] = '\0';
    return secret_eq(want, 32, got, 32);
}

static bool check_crypt(const char *hash, const char *password)
{
    if (!hash[0])
        return false;
    struct crypt_data *cd = wp_calloc(1, sizeof(*cd));
    const char *out = crypt_r(password, hash, cd);
    bool ok = out && out[0] != '*' && secret_eq(out, strlen(out), hash, strlen(hash));
    OPENSSL_cleanse(cd, sizeof(*cd));
    free(cd);
    return ok;
}

/* {SHA256} and friends: base64(digest) or, salted, base64(digest(pw + salt) + salt). */
static bool check_digest(const EVP_MD *md, bool salted, const char *b64, const char *password)
{
    unsigned char raw[512];
    long n = wp_base64_decode(b64, raw, sizeof(raw));
    size_t dlen = (size_t)EVP_MD_get_size(md);
    if (n < (long)dlen || (!salted && (size_t)n != dlen))
        return false;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestInit_ex(c, md, NULL) && EVP_DigestUpdate(c, password, strlen(password)) &&
              EVP_DigestUpdate(c, raw + dlen, (size_t)n - dlen) && EVP_DigestFinal_ex(c, digest, &outlen);
    EVP_MD_CTX_free(c);
    return ok && secret_eq(digest, outlen, raw, dlen);
}

bool wp_auth_check_plain(const char *stored, const char *password)
{
    char scheme[32];
    const char *data = scheme_of(stored, scheme, sizeof(scheme));
    if (is_plain(scheme))
        return secret_eq(data, strlen(data), password, strlen(password));
    if (is_cram(scheme)) {
        unsigned char have[WP_CRAM_CONTEXT_LEN], want[WP_CRAM_CONTEXT_LEN];
        if (!cram_context_of(stored, have))
            return false;
        wp_cram_context(password, want);
        bool ok = secret_eq(have, sizeof(have), want, sizeof(want));
        OPENSSL_cleanse(want, sizeof(want));
        return ok;
    }
    if (strcmp(scheme, "CRYPT") == 0 || strcmp(scheme, "SHA512-CRYPT") == 0 ||
        strcmp(scheme, "SHA256-CRYPT") == 0 || strcmp(scheme, "MD5-CRYPT") == 0 ||
        strcmp(scheme, "BLF-CRYPT") == 0)
        return check_crypt(data, password);
    if (strcmp(scheme, "SHA") == 0 || strcmp(scheme, "SHA1") == 0)
        return check_digest(EVP_sha1(), false, data, password);
    if (strcmp(scheme, "SSHA") == 0)
        return check_digest(EVP_sha1(), true, data, password);
    if (strcmp(scheme, "SHA256") == 0)
        return check_digest(EVP_sha256(), false, data, password);
    if (strcmp(scheme, "SSHA256") == 0)
        return check_digest(EVP_sha256(), true, data, password);
    if (strcmp(scheme, "SHA512") == 0)
        return check_digest(EVP_sha512(), false, data, password);
    if (strcmp(scheme, "SSHA512") == 0)
        return check_digest(EVP_sha512(), true, data, password);
    return false;
}

long wp_base64_decode(const char *in, unsigned char *out, size_t outsize)
{
    size_t n = strlen(in);
    if (n % 4 != 0 || n / 4 * 3 + 1 > outsize)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        bool pad_ok = c == '=' && i >= n - 2 && (i == n - 1 || in[n - 1] == '=');
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '/' || pad_ok))
            return -1;
    }
    int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (r < 0)
        return -1;
    /* EVP_DecodeBlock counts padding as data bytes. */
    if (n >= 1 && in[n - 1] == '=')
        r--;
    if (n >= 2 && in[n - 2] == '=')
        r--;
    out[r] = '\0';
    return r;
}

void wp_base64_encode(const unsigned char *in, size_t len, char *out, size_t outsize)
{
    if ((len + 2) / 3 * 4 + 1 > outsize) {
        if (outsize)
            out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

bool wp_sasl_plain_split(const unsigned char *msg, size_t len, const char **user, const char **password)
{
    const unsigned char *z1 = memchr(msg, '\0', len);
    if (!z1)
        return false;
    const unsigned char *z2 = memchr(z1 + 1, '\0', len - (size_t)(z1 + 1 - msg));
    if (!z2 || memchr(z2 + 1, '\0', len - (size_t)(z2 + 1 - msg)))
        return false;
    const char *authz = (const char *)msg, *authc = (const char *)(z1 + 1);
    if (!authc[0] || (authz[0] && strcmp(authz, authc) != 0))
        return false;
    *user = authc;
    *password = (const char *)(z2 + 1);
    return true;
}
