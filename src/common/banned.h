/*
 * Functions that are too easy to misuse; use the bounded forms instead.
 * Include this last in every .c file, after the system headers (git does
 * the same): the macros would otherwise rewrite their declarations.
 */
#ifndef HUTCH_BANNED_H
#define HUTCH_BANNED_H

#define BANNED(func) sorry_##func##_is_banned

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gets
#define gets(x) BANNED(gets)

#endif
