import type { DependencyContainer, InjectionToken } from "tsyringe";

/** The container methods that bind a token. */
const BINDERS = new Set<PropertyKey>(["register", "registerInstance", "registerSingleton", "registerType"]);

/** A token as a person reads it: a symbol's description, a string, a class's name. */
export function describeToken(token: InjectionToken): string {
  if (typeof token === "symbol") return token.description ?? token.toString();
  if (typeof token === "string") return JSON.stringify(token);
  if (typeof token === "function") return token.name || "(anonymous class)";
  return String(token);
}

/**
 * Wraps a container so that every token `register` binds is recorded in `bound` (in order), while the binding
 * itself still reaches the container. What a plugin's `register` binds is then known without reading
 * tsyringe's private registry.
 */
export function recordingContainer(container: DependencyContainer, bound: InjectionToken[]): DependencyContainer {
  const proxy: DependencyContainer = new Proxy(container, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== "function") return value;
      const method = value as (...a: unknown[]) => unknown;
      if (!BINDERS.has(property)) return method.bind(target);
      return (...args: unknown[]) => {
        bound.push(args[0] as InjectionToken);
        const result = method.apply(target, args);
        // Chained calls (`container.register(...).register(...)`) stay recorded.
        return result === target ? proxy : result;
      };
    },
  });
  return proxy;
}
