import { describe, expect, it } from 'vitest';
import { register as globalRegistry } from 'prom-client';
import { createMetrics, summarizeQueue } from '../../../src/ops/metrics.js';

/** The value of one sample line `name{labels} value` in Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe(createMetrics.name, () => {
  it('counts received messages and bytes, rejections by reason', async () => {
    const metrics = createMetrics();
    metrics.received(1000);
    metrics.received(24);
    metrics.rejected('E_ATTACHMENT_COUNT');
    metrics.rejected('E_ATTACHMENT_COUNT');
    metrics.rejected('E_CLIENT_DENIED');
    const text = await metrics.registry.metrics();
    expect(sample(text, 'smtp_sidecar_messages_received_total')).toBe(2);
    expect(sample(text, 'smtp_sidecar_received_bytes_total')).toBe(1024);
    expect(sample(text, 'smtp_sidecar_messages_rejected_total{reason="E_ATTACHMENT_COUNT"}')).toBe(2);
    expect(sample(text, 'smtp_sidecar_messages_rejected_total{reason="E_CLIENT_DENIED"}')).toBe(1);
  });

  it('counts recipients per upstream and observes receipt-to-delivery latency', async () => {
    const metrics = createMetrics();
    metrics.outcome('sent', 'primary', 3, 1.5);
    metrics.outcome('sent', 'primary', 1, 400);
    metrics.outcome('deferred', 'primary', 2, 0);
    metrics.outcome('bounced', 'secondary', 1, 0);
    const text = await metrics.registry.metrics();
    expect(sample(text, 'smtp_sidecar_recipients_delivered_total{upstream="primary"}')).toBe(4);
    expect(sample(text, 'smtp_sidecar_recipients_deferred_total{upstream="primary"}')).toBe(2);
    expect(sample(text, 'smtp_sidecar_recipients_failed_total{upstream="secondary"}')).toBe(1);
    expect(sample(text, 'smtp_sidecar_delivery_latency_seconds_count{upstream="primary"}')).toBe(2);
    expect(sample(text, 'smtp_sidecar_delivery_latency_seconds_sum{upstream="primary"}')).toBe(401.5);
    expect(sample(text, 'smtp_sidecar_delivery_latency_seconds_bucket{le="2",upstream="primary"}')).toBe(1);
    expect(sample(text, 'smtp_sidecar_delivery_latency_seconds_bucket{le="900",upstream="primary"}')).toBe(2);
  });

  it('counts a failover as deferred, and observes latency only for sent (the outcome recorder hook)', async () => {
    const metrics = createMetrics();
    // compile-time check: RecordDeps.metrics accepts a RelayMetrics
    const hook: NonNullable<import('../../../src/outcome/record.js').RecordDeps['metrics']> = metrics;
    hook.outcome('failover', 'primary', 2, 5);
    const text = await metrics.registry.metrics();
    expect(sample(text, 'smtp_sidecar_recipients_deferred_total{upstream="primary"}')).toBe(2);
    expect(text).not.toMatch(/smtp_sidecar_delivery_latency_seconds_count\{upstream="primary"\}/);
  });

  it('counts token fetches and exposes the expiry in epoch seconds', async () => {
    const metrics = createMetrics();
    metrics.tokenFetched('m365', Date.UTC(2026, 0, 1, 1, 0, 0));
    metrics.tokenFetched('m365', Date.UTC(2026, 0, 1, 2, 0, 0));
    const text = await metrics.registry.metrics();
    expect(sample(text, 'smtp_sidecar_token_fetches_total{upstream="m365"}')).toBe(2);
    expect(sample(text, 'smtp_sidecar_token_expiry_timestamp_seconds{upstream="m365"}')).toBe(Date.UTC(2026, 0, 1, 2, 0, 0) / 1000);
  });

  it('computes queue, upstream and token gauges from the sources at scrape time', async () => {
    let depth = 3;
    let primaryUp = true;
    let queueCalls = 0;
    const metrics = createMetrics({
      queue: async () => {
        queueCalls += 1;
        return { depth, oldestAgeSeconds: depth * 10 };
      },
      upstreams: () => [
        { name: 'primary', up: primaryUp },
        { name: 'secondary', up: true },
      ],
      tokens: () => [{ upstream: 'primary', expiresAt: '2026-01-01T01:00:00.000Z' }, { upstream: 'secondary', expiresAt: undefined }],
    });
    let text = await metrics.registry.metrics();
    expect(sample(text, 'smtp_sidecar_queue_depth')).toBe(3);
    expect(sample(text, 'smtp_sidecar_queue_oldest_message_age_seconds')).toBe(30);
    expect(sample(text, 'smtp_sidecar_upstream_up{upstream="primary"}')).toBe(1);
    expect(sample(text, 'smtp_sidecar_upstream_up{upstream="secondary"}')).toBe(1);
    expect(sample(text, 'smtp_sidecar_token_expiry_timestamp_seconds{upstream="primary"}')).toBe(Date.UTC(2026, 0, 1, 1) / 1000);
    expect(text).not.toContain('smtp_sidecar_token_expiry_timestamp_seconds{upstream="secondary"}');
    expect(queueCalls).toBe(1); // one queue snapshot per scrape feeds both gauges

    depth = 0;
    primaryUp = false;
    text = await metrics.registry.metrics();
    expect(sample(text, 'smtp_sidecar_queue_depth')).toBe(0);
    expect(sample(text, 'smtp_sidecar_upstream_up{upstream="primary"}')).toBe(0);
    expect(queueCalls).toBe(2);
  });

  it('keeps each instance in its own registry, never the global one', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.received(1);
    expect(sample(await b.registry.metrics(), 'smtp_sidecar_messages_received_total')).toBe(0);
    expect(await globalRegistry.metrics()).not.toContain('smtp_sidecar_');
    expect(a.registry).not.toBe(globalRegistry);
  });

  it('prefixes every metric name with smtp_sidecar_', async () => {
    const metrics = createMetrics({ queue: () => ({ depth: 0, oldestAgeSeconds: 0 }), upstreams: () => [], tokens: () => [] });
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names.length).toBeGreaterThanOrEqual(12);
    for (const name of names) expect(name).toMatch(/^smtp_sidecar_/);
  });
});

describe(summarizeQueue.name, () => {
  it('counts the messages and measures the oldest from the clock', () => {
    const now = Date.parse('2026-01-01T01:00:00.000Z');
    expect(summarizeQueue(['2026-01-01T00:59:00.000Z', '2026-01-01T00:30:00.000Z', '2026-01-01T00:45:00.000Z'], now)).toEqual({ depth: 3, oldestAgeSeconds: 1800 });
  });

  it('reports an empty queue as depth 0, age 0, and never a negative age', () => {
    const now = Date.parse('2026-01-01T00:00:00.000Z');
    expect(summarizeQueue([], now)).toEqual({ depth: 0, oldestAgeSeconds: 0 });
    expect(summarizeQueue(['2026-01-01T00:00:05.000Z'], now)).toEqual({ depth: 1, oldestAgeSeconds: 0 });
  });
});
