// A real MCP client for `kgstore mcp`: the official TypeScript SDK's Client over
// its StdioClientTransport. It connects (initialize handshake), lists the tools,
// calls each of them, lists and reads the resource, and prints one JSON report.
// The SDK checks every answer against its own schemas, and every structured
// tool result against the tool's outputSchema; a violation makes a call throw.
//
// Environment: MCP_NPM_DIR (where `npm ci` installed package.json), KGSTORE_BIN,
// KGSTORE_URL.
import path from "node:path";
import { pathToFileURL } from "node:url";

const npm = process.env.MCP_NPM_DIR;
const sdk = (file) =>
  import(pathToFileURL(path.join(npm, "node_modules/@modelcontextprotocol/sdk/dist/esm", file)).href);
const { Client } = await sdk("client/index.js");
const { StdioClientTransport } = await sdk("client/stdio.js");

const transport = new StdioClientTransport({
  command: process.env.KGSTORE_BIN,
  args: ["--store", process.env.KGSTORE_URL, "mcp", "--extra-tools"],
  stderr: "inherit",
});
const client = new Client({ name: "kgstore-test", version: "1.0.0" });
await client.connect(transport);

const report = { server: client.getServerVersion(), instructions: client.getInstructions() };
const { tools } = await client.listTools();
report.tools = tools.map((t) => t.name);

const calls = [
  ["create_entities", { entities: [
    { name: "Alice", entityType: "person", observations: ["likes tea"] },
    { name: "Bob", entityType: "Person", observations: [] },
  ] }],
  ["create_relations", { relations: [{ from: "Alice", to: "Bob", relationType: "knows well" }] }],
  ["add_observations", { observations: [{ entityName: "Bob", contents: ["drinks coffee"] }] }],
  ["read_graph", {}],
  ["search_nodes", { query: "TEA" }],
  ["open_nodes", { names: ["Bob", "Nobody"] }],
  ["read_graph", { limit: 1, namesOnly: true }],
  ["traverse", { name: "Alice" }],
  ["shortest_path", { from: "Alice", to: "Bob" }],
  ["graph_stats", {}],
  ["delete_observations", { deletions: [{ entityName: "Bob", observations: ["drinks coffee"] }] }],
  ["delete_relations", { relations: [{ from: "Alice", to: "Bob", relationType: "knows well" }] }],
  ["add_observations", { observations: [{ entityName: "Nobody", contents: ["x"] }] }],
  ["delete_entities", { entityNames: ["Bob"] }],
];
report.results = [];
for (const [name, args] of calls) {
  const result = await client.callTool({ name, arguments: args });
  report.results.push({
    name,
    isError: result.isError ?? false,
    structured: result.structuredContent ?? null,
    text: result.content[0].text,
  });
}
const resources = await client.listResources();
report.resources = resources.resources.map((r) => r.uri);
const read = await client.readResource({ uri: "memory://knowledge-graph" });
report.resource = JSON.parse(read.contents[0].text);
await client.close();
console.log(JSON.stringify(report));
