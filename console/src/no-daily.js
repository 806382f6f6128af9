// Stands in for @daily-co/daily-js in the bundle. Both transports import it for their default
// media manager (DailyMediaManager), which loads Daily's call machine from a CDN; the console
// always passes WavMediaManager instead, so this is never called, and the bundle holds no
// code that reaches the network.
const unavailable = () => {
  throw new Error("Daily's call machine is not bundled in the botdock console");
};
export default { getCallInstance: () => null, createCallObject: unavailable };
