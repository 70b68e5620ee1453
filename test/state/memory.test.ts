import { MemoryStore } from "../../src/state/memory.js";
import { T0 } from "./fixtures.js";
import { describeStoreContract } from "./store-contract.js";

describeStoreContract("memory", async () => {
  const store = new MemoryStore(null, T0);
  return { store, replica: store, cleanup: () => store.close() };
});
