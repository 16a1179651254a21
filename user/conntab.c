// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Fixed-capacity LRU hash table of connections (see conntab.h). */
#include <stdlib.h>
#include <string.h>

#include "conntab.h"

#define NIL UINT32_MAX

struct rw_conntab {
	struct rw_conn *e;	/* capacity entries */
	uint32_t *bucket;	/* nbuckets heads */
	uint32_t nbuckets;	/* power of two */
	uint32_t capacity;
	uint32_t count;
	uint32_t free;		/* free list through hnext */
	uint32_t fresh;		/* entries from here on never used: their pages untouched,
				   so memory follows the peak of use, not the capacity */
	uint32_t head, tail;	/* LRU list: head most recent */
};

static uint32_t hash_sk(uint64_t sk, uint32_t nbuckets)
{
	/* socket addresses are 64-byte aligned slab objects: mix the high bits in */
	sk ^= sk >> 29;
	sk *= 0xbf58476d1ce4e5b9ull;
	sk ^= sk >> 32;
	return (uint32_t)sk & (nbuckets - 1);
}

struct rw_conntab *rw_conntab_new(size_t capacity)
{
	struct rw_conntab *t;
	uint32_t nb = 1;

	if (capacity == 0 || capacity >= NIL)
		return NULL;
	while (nb < capacity)
		nb <<= 1;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->e = calloc(capacity, sizeof(*t->e));
	t->bucket = malloc(nb * sizeof(*t->bucket));
	if (!t->e || !t->bucket) {
		rw_conntab_free(t);
		return NULL;
	}
	memset(t->bucket, 0xff, nb * sizeof(*t->bucket));
	t->nbuckets = nb;
	t->capacity = capacity;
	t->free = NIL;
	t->fresh = 0;
	t->head = t->tail = NIL;
	return t;
}

void rw_conntab_free(struct rw_conntab *t)
{
	if (!t)
		return;
	free(t->e);
	free(t->bucket);
	free(t);
}

static void lru_unlink(struct rw_conntab *t, uint32_t i)
{
	struct rw_conn *c = &t->e[i];

	if (c->prev != NIL)
		t->e[c->prev].next = c->next;
	else
		t->head = c->next;
	if (c->next != NIL)
		t->e[c->next].prev = c->prev;
	else
		t->tail = c->prev;
}

static void lru_push_front(struct rw_conntab *t, uint32_t i)
{
	struct rw_conn *c = &t->e[i];

	c->prev = NIL;
	c->next = t->head;
	if (t->head != NIL)
		t->e[t->head].prev = i;
	t->head = i;
	if (t->tail == NIL)
		t->tail = i;
}

static uint32_t find(const struct rw_conntab *t, uint64_t sk)
{
	uint32_t i = t->bucket[hash_sk(sk, t->nbuckets)];

	while (i != NIL && t->e[i].sk != sk)
		i = t->e[i].hnext;
	return i;
}

struct rw_conn *rw_conntab_get(struct rw_conntab *t, uint64_t sk)
{
	uint32_t i = find(t, sk);

	if (i == NIL)
		return NULL;
	if (t->head != i) {
		lru_unlink(t, i);
		lru_push_front(t, i);
	}
	return &t->e[i];
}

struct rw_conn *rw_conntab_peek(struct rw_conntab *t, uint64_t sk)
{
	uint32_t i = find(t, sk);

	return i == NIL ? NULL : &t->e[i];
}

struct rw_conn *rw_conntab_add(struct rw_conntab *t, uint64_t sk)
{
	uint32_t i = t->free, b = hash_sk(sk, t->nbuckets);
	struct rw_conn *c;

	if (i != NIL)
		t->free = t->e[i].hnext;
	else if (t->fresh < t->capacity)
		i = t->fresh++;
	else
		return NULL;
	c = &t->e[i];
	memset(c, 0, sizeof(*c));
	c->sk = sk;
	c->pending = RW_NO_PENDING;
	c->hnext = t->bucket[b];
	t->bucket[b] = i;
	lru_push_front(t, i);
	t->count++;
	return c;
}

struct rw_conn *rw_conntab_oldest(struct rw_conntab *t)
{
	return t->tail == NIL ? NULL : &t->e[t->tail];
}

void rw_conntab_del(struct rw_conntab *t, struct rw_conn *c)
{
	uint32_t i = (uint32_t)(c - t->e);
	uint32_t *p = &t->bucket[hash_sk(c->sk, t->nbuckets)];

	while (*p != NIL && *p != i)
		p = &t->e[*p].hnext;
	if (*p == i)
		*p = c->hnext;
	lru_unlink(t, i);
	c->sk = 0;
	c->hnext = t->free;
	t->free = i;
	t->count--;
}

size_t rw_conntab_count(const struct rw_conntab *t)
{
	return t->count;
}
