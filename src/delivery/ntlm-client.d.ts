/**
 * Types for @ewsjs/ntlm-client 3 (it ships none): the three NTLM message functions used by
 * sasl.ts. It is CommonJS whose exports Node cannot name statically: import the default.
 */
declare module '@ewsjs/ntlm-client' {
  export interface Type2Message {
    readonly challenge: Buffer;
    readonly targetName: string;
    readonly version: 1 | 2;
  }
  const ntlm: {
    /** "NTLM <base64 negotiate message>" */
    createType1Message(workstation?: string, target?: string): string;
    decodeType2Message(base64: string): Type2Message;
    /** "NTLM <base64 authenticate message>" */
    createType3Message(type2: Type2Message, username: string, password: string, workstation?: string, target?: string): string;
  };
  export default ntlm;
}
